# -*- coding: utf-8 -*-
"""OAuth2 access tokens (lib/auth/xoauth2.py logs in to SMTP with them; the HTTP transports send them).

Three grants (app.config ``oauth2_grant``) get the tokens: ``refresh_token``
(a mailbox's sign-in, kept as a refresh token), ``client_credentials``
(app-only, with a client secret or a certificate-signed client assertion:
Microsoft 365 SMTP.SendAsApp) and ``jwt_bearer`` (a Google service account
acting for the mailbox through domain-wide delegation); lib/auth/keys.py
signs the assertions. The token endpoint is called through resilient_lib's
``RequestsCommon`` so the app's proxy, timeout and TLS settings apply. Access
tokens are cached per OAuth2 configuration, shared by every Mailer of the
process (function calls and ``num_workers`` threads), until 60 s before they
expire. Client secrets, assertions, refresh tokens and access tokens are
never logged.
"""

import hashlib
import ipaddress
import logging
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

import requests
from resilient_lib import RequestsCommon

from fn_outbound_email.lib.errors import OAuth2Error

LOG = logging.getLogger(__name__)

EXPIRY_MARGIN_SECONDS = 60     # a token this close to expiry is replaced before use
DEFAULT_EXPIRES_IN = 3600      # when the endpoint does not say how long a token lives
TOKEN_TOOL = "outbound-email oauth2-token"
SCOPE_HINT = ("check that scope grants SMTP sending (Microsoft 365: https://outlook.office.com/SMTP.Send "
              "offline_access; Google: https://mail.google.com/), that the refresh token was issued for the "
              "mailbox smtp_user, and that SMTP AUTH is enabled for that mailbox")
# the fix for the OAuth2 error codes of a refused refresh (RFC 6749 section 5.2)
REFRESH_HINTS = {
    "invalid_grant": "the refresh_token has expired, was revoked or belongs to another client_id: run `{0}` and put "
                     "the new refresh_token in app.config".format(TOKEN_TOOL),
    "invalid_client": "check client_id and client_secret",
    "unauthorized_client": "the application registration does not allow the refresh-token grant for client_id",
    "invalid_scope": "check scope: the refresh token was not granted that scope",
}
CLIENT_SECRET_HINTS = {
    "invalid_client": "check client_id and client_secret (Microsoft Entra ID: the secret's Value, not its Secret ID, "
                      "and not expired) and the tenant in token_url",
    "unauthorized_client": "client_id is not an application of the tenant in token_url, or it may not use the "
                           "client credentials grant",
    "invalid_scope": "check scope (Microsoft 365 over SMTP: https://outlook.office365.com/.default; with transport "
                     "= graph leave scope unset: <graph_url>/.default)",
}
CLIENT_CERTIFICATE_HINTS = dict(
    CLIENT_SECRET_HINTS,
    invalid_client="check client_id, the tenant in token_url, and that the certificate in client_certificate is "
                   "the one uploaded to the app registration (Microsoft Entra ID: AADSTS700027)")
JWT_BEARER_HINTS = {
    "unauthorized_client": "domain-wide delegation is missing: in the Google Workspace Admin console allow the "
                           "service account's client ID the scope of the token (SMTP: https://mail.google.com/; "
                           "transport = gmail_api: https://www.googleapis.com/auth/gmail.send)",
    "invalid_grant": "the key in service_account_file was deleted or replaced, the mailbox (oauth2_subject) is not "
                     "a user of the Workspace domain, or this machine's clock is wrong",
    "invalid_scope": "check scope (Gmail: https://mail.google.com/)",
    "invalid_client": "the service account of service_account_file is unknown or disabled",
}
APP_ONLY_SMTP_HINT = {
    "client_credentials": "check that the app has the SMTP.SendAsApp application permission (Office 365 Exchange "
                          "Online) with admin consent, that Exchange Online knows its service principal "
                          "(New-ServicePrincipal) with FullAccess to the mailbox (Add-MailboxPermission), and that "
                          "SMTP AUTH is enabled for the mailbox",
    "jwt_bearer": "check that domain-wide delegation allows the scope https://mail.google.com/ and that the mailbox "
                  "is the user the token was issued for (oauth2_subject)",
}
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\][^'\")]*")

# While this thread waits for a token, resilient_lib's own records are dropped: at DEBUG it logs every
# response body, and a token response carries tokens; at ERROR it logs the raw requests exception, which
# request_token turns into a clean TokenEndpointError that the caller reports (the raw line would come first,
# saying the same in urllib3's words). Its retry warnings pass.
_token_call = threading.local()


class _NoTokenBodies(logging.Filter):
    def filter(self, record):
        return not getattr(_token_call, "active", False) or logging.DEBUG < record.levelno < logging.ERROR


logging.getLogger(RequestsCommon.__module__).addFilter(_NoTokenBodies())


class TokenEndpointError(OAuth2Error):
    """The token endpoint refused the request or could not be reached.

    ``error`` is the endpoint's OAuth2 error code (``invalid_grant`` ...) when it gave one.
    """

    def __init__(self, message, error=None):
        super().__init__(message)
        self.error = error


@contextmanager
def _token_bodies_unlogged():
    _token_call.active = True
    try:
        yield
    finally:
        _token_call.active = False


def one_line(value, limit=400):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _unreachable_reason(token_url, err):
    """What went wrong reaching the endpoint, without the noise of urllib3's nested exception texts."""
    detail = _ERRNO_TEXT.search(str(err))
    detail = detail.group(0).strip() if detail else one_line(err, 200)
    where = "the OAuth2 token endpoint {0}".format(token_url)
    if isinstance(err, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)):
        return "token_url '{0}' is not a valid https URL ({1})".format(token_url, detail)
    if isinstance(err, requests.exceptions.Timeout):
        return "Timed out waiting for {0}; check token_url, firewalls and the proxy settings " \
               "(app.config [integrations] https_proxy) or raise the [integrations] timeout".format(where)
    if isinstance(err, requests.exceptions.ProxyError):
        return "The proxy did not get through to {0} ({1}); check the proxy settings (app.config " \
               "[integrations] https_proxy)".format(where, detail)
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS with {0} failed ({1}); if its certificate is not trusted, set verify in [fn_outbound_email] " \
               "or [integrations] to the CA bundle that issued it".format(where, detail)
    if isinstance(err, requests.exceptions.ConnectionError):
        return "Cannot connect to {0} ({1}); check token_url, DNS, firewalls and the proxy settings " \
               "(app.config [integrations] https_proxy)".format(where, detail)
    return "The request to {0} failed: {1}".format(where, detail)


def request_token(requests_common, token_url, form):
    """POST ``form`` to the token endpoint and return its JSON answer, which holds an access_token.

    Raises TokenEndpointError with the endpoint's ``error`` / ``error_description`` or the reason it
    could not be reached. Shared by the refresh-token grant and ``outbound-email oauth2-token``.
    """
    if _cleartext_to_another_host(token_url):
        # RFC 6749 3.2 requires TLS at the token endpoint; refusing would break setups IBM's app served
        LOG.warning("token_url %s is plain http:// to a host other than this machine: the client credential, the "
                    "refresh token and the access token cross the network unencrypted. Use an https:// token_url",
                    token_url)
    try:
        with _token_bodies_unlogged():
            # the callback hands back every response, so 4xx bodies (the OAuth2 error) are read, not raised
            response = requests_common.execute("POST", token_url, data=form, headers={"Accept": "application/json"},
                                               callback=lambda answer: answer)
    except Exception as err:    # resilient_lib wraps the requests exception in an IntegrationError
        raise TokenEndpointError(_unreachable_reason(token_url, err.__cause__ or err))
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TokenEndpointError("The OAuth2 token endpoint {0} answered HTTP {1} without a JSON body; check "
                                 "token_url".format(token_url, response.status_code))
    error = answer.get("error")
    if error or response.status_code >= 400:
        code = error if isinstance(error, str) else None
        text = one_line(error or "no error code")
        if answer.get("error_description"):
            text += ": " + one_line(answer["error_description"])
        raise TokenEndpointError("The OAuth2 token endpoint {0} refused the request (HTTP {1}): {2}".format(
            token_url, response.status_code, text), error=code)
    if not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
        raise TokenEndpointError("The OAuth2 token endpoint {0} answered HTTP {1} without an access_token; check "
                                 "token_url".format(token_url, response.status_code))
    return answer


def _cleartext_to_another_host(url):
    """Whether ``url`` is http:// to a host that is not a loopback address (or localhost)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:          # a name: it may resolve anywhere
        return True


def _lifetime_seconds(answer):
    """expires_in of a token response (a number or a numeric string), else DEFAULT_EXPIRES_IN."""
    try:
        return max(0, int(float(answer.get("expires_in"))))
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN


@dataclass
class _TokenCache:
    lock: threading.Lock
    refresh_token: Optional[str]       # the configured one, or the endpoint's rotated replacement
    access_token: Optional[str] = None
    expires_at: float = 0.0
    lifetime: int = 0                  # what the endpoint said the current token lives, in seconds
    scope: Optional[str] = None        # the scopes the endpoint said it granted, when it did


_caches = {}
_caches_lock = threading.Lock()


def _cache_for(settings):
    """One cache per OAuth2 configuration: a changed app.config (new refresh_token ...) starts afresh."""
    with _caches_lock:
        cache = _caches.get(settings)
        if cache is None:
            cache = _caches[settings] = _TokenCache(threading.Lock(), settings.refresh_token)
        return cache


class AccessToken(NamedTuple):
    value: str
    cached: bool      # True: issued earlier, the server may have revoked it since
    lifetime: int = 0               # seconds the endpoint gave the token when it was issued
    scope: Optional[str] = None     # the granted scopes, when the endpoint said


def _refresh_token_form(settings, cache):
    form = {"grant_type": "refresh_token", "client_id": settings.client_id, "refresh_token": cache.refresh_token}
    if settings.client_secret:
        form["client_secret"] = settings.client_secret
    return form


def _client_credentials_form(settings, cache):
    form = {"grant_type": "client_credentials", "client_id": settings.client_id}
    if settings.client_certificate:
        from fn_outbound_email.lib.auth.keys import CLIENT_ASSERTION_TYPE, load_client_certificate
        certificate = load_client_certificate(settings.client_certificate, settings.client_certificate_password)
        form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
        form["client_assertion"] = certificate.client_assertion(settings.client_id, settings.token_url)
    else:
        form["client_secret"] = settings.client_secret
    return form


def _jwt_bearer_form(settings, cache):
    from fn_outbound_email.lib.auth.keys import JWT_BEARER_GRANT_TYPE, load_service_account
    account = load_service_account(settings.service_account_file)
    # the scope travels in the assertion (Google's form), not as a form field
    return {"grant_type": JWT_BEARER_GRANT_TYPE,
            "assertion": account.grant_assertion(settings.subject, settings.scope, settings.token_url)}


# grant -> the form of its token request
_FORMS = {"refresh_token": _refresh_token_form, "client_credentials": _client_credentials_form,
          "jwt_bearer": _jwt_bearer_form}


def _hints(settings):
    """The fixes for the token endpoint's error codes, for the grant and credential of ``settings``."""
    if settings.grant == "client_credentials":
        return CLIENT_CERTIFICATE_HINTS if settings.client_certificate else CLIENT_SECRET_HINTS
    return JWT_BEARER_HINTS if settings.grant == "jwt_bearer" else REFRESH_HINTS


class OAuth2TokenProvider:
    """Access tokens from the grant of ``settings`` (an OAuth2Settings), cached."""

    def __init__(self, settings, requests_common=None, clock=time.monotonic):
        self._settings = settings
        self._requests_common = requests_common or RequestsCommon(opts={}, function_opts={})
        self._clock = clock
        self._cache = _cache_for(settings)

    def identity(self):
        """Every setting that decides which token is issued, the credentials as a digest (for telling pooled SMTP
        sessions apart: a session logged in with one configuration must not serve another)."""
        settings = self._settings
        credentials = hashlib.sha256(repr((settings.client_secret, settings.refresh_token, settings.client_certificate,
                                           settings.client_certificate_password, settings.service_account_file)
                                          ).encode("utf-8", "surrogatepass")).hexdigest()
        return settings.grant, settings.client_id, settings.token_url, settings.scope, credentials

    @property
    def smtp_refusal_hint(self):
        """What to check when the SMTP server refuses a token of this grant."""
        return APP_ONLY_SMTP_HINT.get(self._settings.grant, SCOPE_HINT)

    def access_token(self):
        """The cached token while it has more than a minute left, else a new one (one request at a time)."""
        cache = self._cache
        with cache.lock:
            if cache.access_token and self._clock() < cache.expires_at:
                return AccessToken(cache.access_token, True, cache.lifetime, cache.scope)
            self._fetch(cache)
            return AccessToken(cache.access_token, False, cache.lifetime, cache.scope)

    def invalidate(self, token=None):
        """Drop the cached access token (only if it is still ``token``, when given)."""
        cache = self._cache
        with cache.lock:
            if token is None or cache.access_token == token:
                cache.access_token = None

    def _fetch(self, cache):
        settings = self._settings
        form = _FORMS[settings.grant](settings, cache)
        if settings.scope and settings.grant != "jwt_bearer":
            form["scope"] = settings.scope
        started = self._clock()
        try:
            answer = request_token(self._requests_common, settings.token_url, form)
        except TokenEndpointError as err:
            hint = _hints(settings).get(err.error)
            what = "refresh" if settings.grant == "refresh_token" else \
                "request ({0})".format(settings.grant_description)
            raise TokenEndpointError("OAuth2 token {0} failed: {1}{2}".format(what, err, "; " + hint if hint else ""),
                                     error=err.error)
        lifetime = _lifetime_seconds(answer)
        cache.access_token = answer["access_token"]
        cache.expires_at = started + lifetime - EXPIRY_MARGIN_SECONDS
        cache.lifetime = lifetime
        cache.scope = answer["scope"] if isinstance(answer.get("scope"), str) else None
        LOG.info("OAuth2: new access token from %s (%s) for %s, valid for %s s", settings.token_url,
                 settings.grant_description, settings.client_id or settings.subject, lifetime)
        rotated = answer.get("refresh_token")
        if settings.grant == "refresh_token" and isinstance(rotated, str) and rotated and \
                rotated != cache.refresh_token:
            cache.refresh_token = rotated
            LOG.warning("The OAuth2 token endpoint %s replaced the refresh token (rotation). The app uses the new one "
                        "until it restarts, but app.config still holds the old one, which may stop working: run `%s` "
                        "and update refresh_token in app.config [fn_outbound_email]", settings.token_url, TOKEN_TOOL)
