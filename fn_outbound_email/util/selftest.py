# -*- coding: utf-8 -*-
"""Selftest: `resilient-circuits selftest -l fn_outbound_email`.

Connects exactly as sending does (TLS mode, certificate check, AUTH with the
password or XOAUTH2 after a token refresh), then NOOP and QUIT. No mail is
sent. With ``transport = graph`` or ``gmail_api`` it gets an app-only token and asks the API to check the
mailbox's send permission with a request that cannot send (lib/delivery/graph.py and
lib/delivery/gmail_api.py say which and why). The reason of a failure says what failed and how to fix it.
"""

import logging

from resilient_lib import RequestsCommon

from fn_outbound_email.lib.errors import MailError
from fn_outbound_email.lib.delivery.factory import build_transport
from fn_outbound_email.lib.settings import SECTION, load_settings

LOG = logging.getLogger(__name__)


def selftest_function(opts):
    """Return {"state": "success"} or {"state": "failure", "reason": ...}; never raises."""
    settings = None
    try:
        settings = load_settings(opts)
        requests_common = RequestsCommon(opts=opts, function_opts=opts.get(SECTION) or {})
        transport = build_transport(settings, requests_common)
        transport.check_connection()
    except MailError as err:
        reason = _with_grant(str(err), settings)
        LOG.error("selftest failed: %s", reason)
        return {"state": "failure", "reason": reason}
    except Exception as err:   # selftest must report, never raise, whatever the config
        LOG.error("selftest failed unexpectedly: %s", type(err).__name__)
        return {"state": "failure",
                "reason": _with_grant("Unexpected {0}: {1}".format(type(err).__name__, err), settings)}
    if settings.transport != "smtp":
        LOG.info("selftest: %s accepts a token from the OAuth2 %s for sending as %s", transport.provider,
                 settings.oauth2.grant_description, transport.mailbox)
        return {"state": "success"}
    LOG.info("selftest: connected to %s:%s, TLS mode %s%s", settings.smtp_server, settings.smtp_port,
             settings.ssl_mode, ", authenticated" if (settings.smtp_user or settings.oauth2) else "")
    if settings.oauth2:
        LOG.info("selftest: XOAUTH2 with a token from the OAuth2 %s", settings.oauth2.grant_description)
    return {"state": "success"}


def _with_grant(reason, settings):
    """A failure reason names the OAuth2 grant in use: the fix depends on it."""
    oauth2 = settings.oauth2 if settings else None
    if not oauth2 or oauth2.grant_description in reason:
        return reason
    return "{0} (authentication: OAuth2 {1})".format(reason, oauth2.grant_description)
