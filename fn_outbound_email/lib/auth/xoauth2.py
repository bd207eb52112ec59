# -*- coding: utf-8 -*-
"""AUTH XOAUTH2: logging in to an SMTP server as a mailbox with an OAuth2 access token (lib/auth/oauth2.py gets
the tokens). A refused cached token gets one new token and one more try; the token, and the line that carried
it, never reach a reply text, whatever the server echoes."""

import base64
import binascii
import logging
from email.utils import parseaddr

from fn_outbound_email.lib.auth.oauth2 import one_line
from fn_outbound_email.lib.errors import DeliveryError
from fn_outbound_email.lib.errors import smtp_reply_text as _reply_text
from fn_outbound_email.lib.errors import without_secrets

LOG = logging.getLogger(__name__)


def xoauth2_initial_response(user, token):
    """The SASL XOAUTH2 initial client response, base64 encoded."""
    raw = "user={0}\x01auth=Bearer {1}\x01\x01".format(user, token)
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


class OAuth2Authenticator:
    """AUTH XOAUTH2 as ``user`` with tokens from an OAuth2TokenProvider (the PasswordAuthenticator interface)."""

    def __init__(self, user, token_provider):
        # from_email_address may be 'Name <address>': the login is the address
        self._user = parseaddr(user or "")[1] or (user or "").strip()
        self._tokens = token_provider

    def identity(self):
        """Who logs in and with which OAuth2 configuration, for telling pooled SMTP sessions apart."""
        return ("xoauth2", self._user) + self._tokens.identity()

    def authenticate(self, smtp):
        if not self._user or any(ord(char) < 32 for char in self._user):
            raise DeliveryError("OAuth2 needs the mailbox to log in as: set smtp_user (or from_email_address) in "
                                "app.config [fn_outbound_email]")
        self._check_offered(smtp)
        token = self._tokens.access_token()
        code, reply = self._attempt(smtp, token.value)
        if code != 235 and token.cached:
            # the server may have revoked a token that has not expired yet: one new token, one more try
            LOG.info("The SMTP server refused the cached OAuth2 access token (%s); getting a new one",
                     _reply_text(code, reply))
            self._tokens.invalidate(token.value)
            code, reply = self._attempt(smtp, self._tokens.access_token().value)
        if code != 235:
            raise DeliveryError("The SMTP server refused XOAUTH2 for user '{0}': {1}; {2}".format(
                self._user, _reply_text(code, reply), self._tokens.smtp_refusal_hint),
                transient=400 <= code < 500, smtp_code=code)

    @staticmethod
    def _check_offered(smtp):
        if not smtp.has_extn("auth"):
            raise DeliveryError("The SMTP server does not offer AUTH{0}; check smtp_ssl_mode (many servers offer AUTH "
                                "only after STARTTLS)".format("" if smtp.does_esmtp else " (no ESMTP)"))
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        if "XOAUTH2" not in mechanisms:
            raise DeliveryError("The SMTP server offers AUTH {0} but not XOAUTH2; check smtp_server, or remove "
                                "client_id to log in with smtp_password".format(" ".join(mechanisms) or "(none)"))

    def _attempt(self, smtp, token):
        """One AUTH XOAUTH2 exchange; returns the server's final (code, reply), the token and the line that
        carried it taken out of the reply (a server may echo them)."""
        initial_response = xoauth2_initial_response(self._user, token)
        code, reply = smtp.docmd("AUTH", "XOAUTH2 " + initial_response)
        if code == 334:
            # a refusal: the challenge is base64 JSON with the details, and an empty line ends the exchange
            detail = _decoded_challenge(reply)
            code, reply = smtp.docmd("")
            if detail:
                reply = "{0} ({1})".format(_reply_text("", reply), detail)
        return code, without_secrets(_reply_text("", reply), [initial_response, token])


def _decoded_challenge(reply):
    try:
        return one_line(base64.b64decode(reply, validate=True).decode("utf-8", "replace"), 300)
    except (binascii.Error, ValueError):
        return one_line(reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply, 300)
