# -*- coding: utf-8 -*-
"""Delivery over a provider's HTTPS mail API (Microsoft Graph, the Gmail API): what both have in common.

A transport here is a ``delivery.base.Transport``: its ``attempt`` POSTs the message we composed (MIME bytes,
S/MIME included) in one request with an app-only bearer token from lib/auth/oauth2.py, and ``check_connection``
serves selftest. base.py retries what an attempt reports as transient, within ``smtp_retries``; an attempt maps
the answer as the SMTP transport maps replies:

* 429 and 503 are transient and carry the ``Retry-After`` the provider asks for, which base.py waits instead
  of its backoff; a wait longer than MAX_RETRY_AFTER_SECONDS is not waited for: the send fails at once.
* 401 gets one new token and one more try within the attempt (the cached token may have been revoked).
* 403, 404 and 413 name what to fix (the permission or policy, the mailbox, the size); other 4xx are final.
* A connection that fails before the request is out is retried like a refused SMTP connection; one lost after
  the request was sent (a read timeout, a dropped connection) or a server error (500, a gateway's 502/504) may
  have sent the mail, so it is reported as uncertain and never resent.

There is no envelope: the providers take the recipients from the message's headers and remove a Bcc header
before delivery, so the Bcc recipients (envelope recipients in neither To nor Cc) travel in a Bcc header
added here, to the copy handed to the provider only.

Why requests and our own code rather than msal / google-auth / the providers' SDKs: the app-only tokens already
come from lib/auth/oauth2.py (client credentials with a secret or certificate, and the JWT bearer grant, with the
cache shared by every send of the process); each provider's send is one POST, which requests does (a dependency
already, through resilient-lib); and the retry rules above (Retry-After within smtp_retries, the uncertain rule)
differ from urllib3's Retry, which would resend a request whose answer was lost. Proxies and the CA bundle
come from app.config as resilient_lib's RequestsCommon reads them ([integrations] or [fn_outbound_email]
http_proxy / https_proxy / verify), as for the token endpoint.
"""

import email.parser
import email.policy
import logging
import threading
from email.headerregistry import Address
from email.utils import getaddresses
from urllib.parse import urlsplit

import requests

from fn_outbound_email.lib.delivery.base import Transport
from fn_outbound_email.lib.errors import DeliveryError, MailError
from fn_outbound_email.lib.message.header_policy import OUTER_POLICY, OUTER_POLICY_UTF8, header_line

LOG = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 60     # a provider asking for a longer pause gets a failed (transient) send instead
MAX_ERROR_TEXT = 300             # characters of a provider's error message kept in a reason
# a server error, or a gateway that lost the backend's answer: the mail may have been sent
UNCERTAIN_STATUSES = (500, 502, 504)
RETRY_STATUSES = (429, 503)
# an answer may take the connection timeout plus the time the request needs at this (slow uplink) rate, as
# the SMTP transport's message data does
MIN_BYTES_PER_SECOND = 64 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_sessions = threading.local()    # requests.Session per thread and transport kind: keep-alive between sends


class HttpAnswer:
    """What a provider answered: the status, its error code and message (from the JSON error body), Retry-After."""

    def __init__(self, response):
        self.status = response.status_code
        self.retry_after = _retry_after(response.headers.get("Retry-After"))
        self.code, self.text = _error_of(response)

    def describe(self):
        detail = ": ".join(part for part in (self.code, self.text) if part)
        return "HTTP {0}{1}".format(self.status, " ({0})".format(detail) if detail else "")


def _retry_after(value):
    """Retry-After in seconds (delta-seconds form), or None when absent or an HTTP date we do not wait for."""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _error_of(response):
    """(code, message) of a JSON error body, as Graph ({"error": {"code", "message"}}) and Google
    ({"error": {"status", "message", "errors": [{"reason"}]}}) write it; (None, short text) otherwise."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else error.get("status")
        reasons = [item.get("reason") for item in error.get("errors") or () if isinstance(item, dict)]
        if reasons and reasons[0] and not code:
            code = reasons[0]
        return (str(code) if code else None), _short(error.get("message"))
    return None, _short(response.text if response.headers.get("Content-Type", "").startswith("text/") else None)


def _short(text):
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "..."


def bcc_recipients(message, recipients):
    """The envelope recipients that are in neither the To nor the Cc header of ``message`` (bytes)."""
    end = message.find(b"\r\n\r\n")
    headers = email.parser.BytesHeaderParser(policy=email.policy.SMTPUTF8).parsebytes(
        bytes(message[:end + 2] if end >= 0 else message))
    shown_to = {address.lower() for _, address in getaddresses(
        [str(value) for name in ("To", "Cc") for value in headers.get_all(name, [])])}
    return [recipient for recipient in recipients if recipient.lower() not in shown_to]


def with_bcc_header(message, recipients):
    """``message`` with a Bcc header naming its Bcc recipients in front (the provider removes it before delivery);
    ``message`` itself when there are none. The outer headers are outside any S/MIME signature."""
    hidden = bcc_recipients(message, recipients)
    if not hidden:
        return message
    utf8 = not all(address.isascii() for address in hidden)
    line = header_line("Bcc", [Address(addr_spec=address) for address in hidden],
                       OUTER_POLICY_UTF8 if utf8 else OUTER_POLICY)
    return line + bytes(message)


class HttpMailTransport(Transport):
    """One request to an HTTP mail API per attempt, its error mapping and session; a subclass says how to send
    one message.

    Subclasses set ``provider`` (a name for reasons), ``kind`` (for the session) and implement ``_check_size``,
    ``_send_request`` (method, URL, headers, body), ``_probe_request``, ``_probe_passed`` and ``_refusal_hint``.
    """

    provider = "the mail API"
    protocol = "mail API"
    kind = "http"

    def __init__(self, settings, token_provider, requests_common):
        super().__init__(settings)
        self._tokens = token_provider
        # a local endpoint (tests, `outbound-email demo`) is reached directly, whatever proxy the host has
        local = urlsplit(self.api_url).hostname in LOOPBACK_HOSTS
        self._proxies = requests_common.get_proxies() if requests_common and not local else None
        verify = requests_common.get_verify() if requests_common else None
        self._verify = True if verify is None else verify
        self.mailbox = settings.oauth2.subject

    @property
    def api_url(self):
        return self._settings.graph_url if self.kind == "graph" else self._settings.gmail_api_url

    # --- the Transport interface -------------------------------------------------------------------
    def attempt(self, envelope_from, recipients, message, smtputf8):
        """One request with ``message`` for ``recipients``: (every recipient, {}) when the provider took it.

        The provider accepts or refuses the message as a whole: every recipient is accepted, or none.
        """
        body_message = with_bcc_header(message, recipients)
        self._check_size(body_message)
        answer = self._exchange(lambda: self._send_request(body_message), len(body_message))
        if not 200 <= answer.status < 300:
            raise self._refusal(answer, len(message))
        return list(recipients), {}

    def check_connection(self):
        """Get a token and make the provider check the mailbox's send permission, sending nothing (selftest)."""
        answer = self._exchange(self._probe_request, 0)
        if not self._probe_passed(answer):
            raise self._refusal(answer, 0)

    # --- one request, a new token after a 401 ------------------------------------------------------
    def _exchange(self, make_request, size):
        """The provider's answer to one request (two after a 401: the second with a new token); DeliveryError
        when the answer says to come back later, or may hide a sent message."""
        renewed = False
        while True:
            token = self._tokens.access_token()
            method, url, headers, body = make_request()
            headers = dict(headers, Authorization="Bearer " + token.value)
            answer = self._request(method, url, headers, body, size)
            if answer.status == 401 and not renewed:
                # the cached token may have been revoked: one new token, one more try
                LOG.info("%s refused the access token (%s); getting a new one", self.provider, answer.describe())
                self._tokens.invalidate(token.value)
                renewed = True
                continue
            if answer.status in UNCERTAIN_STATUSES:
                raise self._uncertain(answer.describe())
            if answer.status in RETRY_STATUSES:
                raise self._busy(answer)
            return answer

    def _request(self, method, url, headers, body, size):
        """One HTTP request; raises DeliveryError when there is no answer (transient, or uncertain once sent)."""
        timeout = (self._settings.timeout, self._settings.timeout + size / MIN_BYTES_PER_SECOND)
        try:
            response = self._session().request(method, url, headers=headers, data=body, timeout=timeout,
                                               proxies=self._proxies, verify=self._verify, allow_redirects=False)
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError,
                requests.exceptions.SSLError, requests.exceptions.InvalidURL) as err:
            raise self._not_sent(err)
        except requests.exceptions.ConnectionError as err:
            if _never_connected(err):
                raise self._not_sent(err)
            raise self._uncertain(_reason_of(err))
        except requests.exceptions.RequestException as err:     # a read timeout, a broken answer
            raise self._uncertain(_reason_of(err))
        with response:
            return HttpAnswer(response)

    def _session(self):
        sessions = getattr(_sessions, "by_kind", None)
        if sessions is None:
            sessions = _sessions.by_kind = {}
        session = sessions.get(self.kind)
        if session is None:
            session = sessions[self.kind] = requests.Session()
            session.trust_env = False      # the proxy is app.config's (RequestsCommon reads the environment too)
        return session

    # --- reasons -----------------------------------------------------------------------------------
    def _not_sent(self, err):
        where = self.api_url
        if isinstance(err, requests.exceptions.SSLError):
            return DeliveryError("TLS with {0} ({1}) failed ({2}); nothing was sent. If its certificate is not "
                                 "trusted, set verify in [fn_outbound_email] or [integrations] to the CA bundle "
                                 "that issued it".format(self.provider, where, _reason_of(err)))
        if isinstance(err, requests.exceptions.ProxyError):
            return DeliveryError("The proxy did not get through to {0} ({1}); nothing was sent. Check http_proxy / "
                                 "https_proxy in app.config [integrations] or [fn_outbound_email]".format(
                                     self.provider, _reason_of(err)), transient=True)
        return DeliveryError("Cannot connect to {0} at {1} ({2}); nothing was sent. Check the URL, DNS, firewalls "
                             "and the proxy settings".format(self.provider, where, _reason_of(err)), transient=True)

    def _busy(self, answer):
        """Transient, with the provider's Retry-After for base.py; not transient when the wait is too long."""
        asked = "" if answer.retry_after is None else ", asking to wait {0:g} s".format(answer.retry_after)
        waitable = answer.retry_after is None or answer.retry_after <= MAX_RETRY_AFTER_SECONDS
        return DeliveryError(_sentence("{0} is busy and refused the request for now ({1}{2}); nothing was sent: try "
                                       "again later, or raise smtp_retries".format(
                                           self.provider, answer.describe(), asked)),
                             transient=waitable, retry_after=answer.retry_after if waitable else None)

    def _uncertain(self, reason):
        return DeliveryError(_sentence("{0} did not confirm the message after it was sent ({1}); delivery is "
                                       "uncertain, so it was not sent again: check the recipients' mailboxes (or the "
                                       "Sent Items of {2}) before resending".format(self.provider, reason,
                                                                                    self.mailbox)), uncertain=True)

    def _refusal(self, answer, size):
        hint = self._refusal_hint(answer, size)
        return DeliveryError(_sentence("{0} refused the message for {1}: {2}{3}".format(
            self.provider, self.mailbox, answer.describe(), "; " + hint if hint else "")))

    # --- what a provider says ----------------------------------------------------------------------
    def _check_size(self, message):
        raise NotImplementedError

    def _send_request(self, message):
        raise NotImplementedError

    def _probe_request(self):
        raise NotImplementedError

    def _probe_passed(self, answer):
        raise NotImplementedError

    def _refusal_hint(self, answer, size):
        raise NotImplementedError


def _sentence(text):
    """``text`` starting with a capital ("the Gmail API ..." begins a reason)."""
    return text[:1].upper() + text[1:]


def _never_connected(err):
    """True when requests' ConnectionError means the TCP connection was never made (nothing went out)."""
    from urllib3.exceptions import NewConnectionError
    cause = err.args[0] if err.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, NewConnectionError) or isinstance(cause, NewConnectionError)


def _reason_of(err):
    """The innermost reason of a requests exception, without urllib3's nested wrapper texts."""
    cause = err.args[0] if err.args else err
    cause = getattr(cause, "reason", cause)
    text = str(cause.args[-1] if isinstance(cause, Exception) and cause.args else cause)
    return _short(text) or type(err).__name__


def size_refusal(provider, size, limit, limit_text, body_size=None):
    """The MailError for a message over a provider's limit, refused before anything is sent (both sizes named)."""
    encoded = "" if body_size is None else " ({0} bytes base64-encoded)".format(body_size)
    return MailError("The message is {0} bytes{1}, more than the {2} bytes {3} takes {4}; nothing was sent: send "
                     "fewer or smaller attachments".format(size, encoded, limit, provider, limit_text))
