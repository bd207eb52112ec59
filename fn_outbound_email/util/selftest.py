# -*- coding: utf-8 -*-
"""Selftest: `resilient-circuits selftest -l fn_outbound_email`.

Connects exactly as sending does (TLS mode, certificate check, AUTH with the
password or XOAUTH2 after a token refresh), then NOOP and QUIT. No mail is
sent. The reason of a failure says what failed and how to fix it.
"""

import logging

from resilient_lib import RequestsCommon

from fn_outbound_email.lib.errors import MailError
from fn_outbound_email.lib.mailer import build_transport
from fn_outbound_email.lib.settings import SECTION, load_settings

LOG = logging.getLogger(__name__)


def selftest_function(opts):
    """Return {"state": "success"} or {"state": "failure", "reason": ...}; never raises."""
    try:
        settings = load_settings(opts)
        requests_common = RequestsCommon(opts=opts, function_opts=opts.get(SECTION) or {})
        transport = build_transport(settings, requests_common)
        transport.check_connection()
    except MailError as err:
        LOG.error("selftest failed: %s", err)
        return {"state": "failure", "reason": str(err)}
    except Exception as err:   # selftest must report, never raise, whatever the config
        LOG.error("selftest failed unexpectedly: %s", type(err).__name__)
        return {"state": "failure", "reason": "Unexpected {0}: {1}".format(type(err).__name__, err)}
    LOG.info("selftest: connected to %s:%s, TLS mode %s%s", settings.smtp_server, settings.smtp_port,
             settings.ssl_mode, ", authenticated" if (settings.smtp_user or settings.oauth2) else "")
    return {"state": "success"}
