# -*- coding: utf-8 -*-
"""Password login to an SMTP server: exactly one AUTH PLAIN or AUTH LOGIN exchange per session.

The password stays in this object: the pool tells sessions apart by a digest of it (``identity``).
"""

import base64
import hashlib
import smtplib

from fn_outbound_email.lib.errors import DeliveryError, smtp_reply_text, transient_code, without_secrets


class PasswordAuthenticator:
    """One AUTH exchange with the configured password: PLAIN when offered, else LOGIN.

    smtplib's login() tries every mechanism in turn, so a wrong password counts as two (or three) failures
    on the server, pushing the account toward lockout; ``smtp.auth`` runs exactly one.
    """

    def __init__(self, user, password):
        self._user = user
        self._password = password

    def identity(self):
        """Who logs in, for telling pooled sessions apart (a digest: the password itself stays here)."""
        return "password", self._user, hashlib.sha256((self._password or "").encode("utf-8")).hexdigest()

    def authenticate(self, smtp):
        if not smtp.has_extn("auth"):
            raise DeliveryError("The SMTP server does not offer AUTH{0}; check smtp_ssl_mode (many servers offer "
                                "AUTH only after STARTTLS) or remove smtp_user".format(
                                    "" if smtp.does_esmtp else " (no ESMTP)"))
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in offered:
            mechanism, response = "PLAIN", self._plain
        elif "LOGIN" in offered:
            mechanism, response = "LOGIN", self._login
        else:
            raise DeliveryError("The SMTP server offers AUTH {0} but neither PLAIN nor LOGIN, so smtp_password cannot "
                                "be used; configure OAuth2 (client_id ...) if it offers XOAUTH2".format(
                                    " ".join(offered) or "(none)"))
        try:
            smtp.auth(mechanism, response)
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError("The SMTP server refused the login of user '{0}' (AUTH {1}): {2}{3}".format(
                self._user, mechanism, without_secrets(smtp_reply_text(err.smtp_code, err.smtp_error), self._sent()),
                "" if transient_code(err.smtp_code) else "; check smtp_user and smtp_password"),
                transient=transient_code(err.smtp_code), smtp_code=err.smtp_code)
        except UnicodeEncodeError:
            # smtplib sends AUTH responses as ASCII only
            raise DeliveryError("smtp_user or smtp_password has non-ASCII characters, which AUTH {0} cannot send "
                                "here; use an ASCII password".format(mechanism))

    def _sent(self):
        """The password in every form an AUTH exchange carries it (a server may echo any of them)."""
        password = self._password or ""
        forms = [password, "\0{0}\0{1}".format(self._user, password)]
        return [password] + [base64.b64encode(form.encode("utf-8", "replace")).decode("ascii") for form in forms]

    def _plain(self, challenge=None):
        return "\0{0}\0{1}".format(self._user, self._password)

    def _login(self, challenge=None):
        # AUTH LOGIN: the initial response is the user name, the answer to the (password) challenge the password
        return self._user if challenge is None else self._password
