# -*- coding: utf-8 -*-
"""The transport app.config asks for (``transport``), with its authentication: what sending and selftest use."""

import logging

from fn_outbound_email.lib.auth.password import PasswordAuthenticator
from fn_outbound_email.lib.delivery.smtp.transport import SmtpTransport

LOG = logging.getLogger(__name__)


def build_transport(settings, requests_common=None):
    """The transport app.config asks for (``transport``), with its authentication (shared by sending and
    selftest): SMTP, or Microsoft Graph / the Gmail API with an app-only token."""
    if settings.transport != "smtp":
        return _http_transport(settings, requests_common)
    if settings.oauth2:
        from fn_outbound_email.lib.auth.oauth2 import OAuth2TokenProvider
        from fn_outbound_email.lib.auth.xoauth2 import OAuth2Authenticator
        if settings.smtp_password:
            LOG.warning("Both smtp_password and OAuth2 (%s) are set: OAuth2 is used and the password ignored",
                        settings.oauth2.grant_description)
        user = settings.oauth2.subject or settings.smtp_user or settings.from_address
        authenticator = OAuth2Authenticator(user, OAuth2TokenProvider(settings.oauth2, requests_common))
    elif settings.smtp_user:
        authenticator = PasswordAuthenticator(settings.smtp_user, settings.smtp_password)
    else:
        authenticator = None
    return SmtpTransport(settings, authenticator)


def _http_transport(settings, requests_common):
    from resilient_lib import RequestsCommon

    from fn_outbound_email.lib.auth.oauth2 import OAuth2TokenProvider
    if settings.transport == "graph":
        from fn_outbound_email.lib.delivery.graph import GraphTransport as transport_class
    else:
        from fn_outbound_email.lib.delivery.gmail_api import GmailApiTransport as transport_class
    requests_common = requests_common or RequestsCommon(opts={}, function_opts={})
    return transport_class(settings, OAuth2TokenProvider(settings.oauth2, requests_common), requests_common)


def close_idle_connections():
    """Close the idle SMTP sessions kept for reuse (an app.config reload: the next send logs in afresh)."""
    from fn_outbound_email.lib.delivery.smtp.pool import POOL
    POOL.close_all()
