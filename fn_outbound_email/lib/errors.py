# -*- coding: utf-8 -*-
"""Error types of the outbound email library.

Input problems raise ``ValueError`` (SOAR shows the function as failed).
Everything that goes wrong while preparing or delivering a valid request
raises a ``MailError``; the function components turn it into a result with
``success`` false and the error text as ``reason``.
"""

# The app.config section of the app. Here, at the bottom of the imports, so that every module naming a
# setting in its messages (settings.py, auth/keys.py) can import it without importing the other.
SECTION = "fn_outbound_email"


class MailError(Exception):
    """A send could not be completed; the message says why and how to fix it."""


class ConfigurationError(MailError):
    """The [fn_outbound_email] section of app.config is wrong or incomplete."""


class TemplateError(MailError):
    """A template could not be found, compiled or rendered."""


class SmimeError(MailError):
    """Signing or encrypting failed (bad bundle, password, certificate)."""


class OAuth2Error(MailError):
    """The OAuth2 token endpoint refused or could not be reached."""


class DeliveryError(MailError):
    """The SMTP conversation (or the mail API's request) failed.

    ``transient`` marks failures worth retrying (connection problems, 4xx).
    ``uncertain`` marks failures after DATA was sent, where the server may
    have accepted the message: never retried, to avoid a second copy.
    ``retry_after``: the seconds the server asked to wait before a retry (HTTP Retry-After), when it did.
    """

    def __init__(self, message, transient=False, uncertain=False, smtp_code=None, retry_after=None):
        super().__init__(message)
        self.transient = transient
        self.uncertain = uncertain
        self.smtp_code = smtp_code
        self.retry_after = retry_after


def transient_code(code):
    """An SMTP reply code (or a transport's code in SMTP terms) that means "not now": 4xx, worth a retry."""
    return 400 <= code < 500


def smtp_reply_text(code, message):
    """A server's reply as one line for an error message: the code, then the text with whitespace folded."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return "{0} {1}".format(code, " ".join(str(message).split())).strip()


def without_secrets(text, secrets):
    """``text`` with each of ``secrets`` (the empty ones skipped) replaced by [redacted]: a server may echo the
    line a login sent (AUTH PLAIN's base64 carries the password) in the reply that becomes a result's reason."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text
