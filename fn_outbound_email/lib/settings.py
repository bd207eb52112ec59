# -*- coding: utf-8 -*-
"""The app.config sections of fn_outbound_email, read once into typed settings.

Values are read through the mapping resilient-circuits hands over, so
``$ENV``, ``^keyring`` and PAM-plugin secrets are already resolved. Secrets
are excluded from ``repr`` so a settings object can never leak them to a log.
"""

import math
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Union

from resilient_lib import str_to_bool, validate_fields

from fn_outbound_email.lib.errors import SECTION, ConfigurationError
from fn_outbound_email.lib.message.addresses import parse_address
from fn_outbound_email.lib.templates.limits import DEFAULT_MAX_MEMORY, DEFAULT_MAX_OUTPUT, MIN_MAX_MEMORY, \
    TemplateLimits
from fn_outbound_email.lib.templates.limits import DEFAULT_TIMEOUT as DEFAULT_TEMPLATE_TIMEOUT

TEMPLATES_SECTION = "fn_outbound_email:templates"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SSL_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TIMEOUT = 20
DEFAULT_RETRIES = 2
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 30      # seconds an unused SMTP session is kept; servers wait 300 s (RFC 5321 4.5.3.2.7)

# how mail leaves: SMTP, or the HTTPS APIs of Microsoft 365 and Google Workspace (lib/delivery/)
TRANSPORTS = ("smtp", "graph", "gmail_api")
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
DEFAULT_GMAIL_API_URL = "https://gmail.googleapis.com"
GMAIL_SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"
# the app-only grant each HTTP transport signs in with
TRANSPORT_GRANTS = {"graph": "client_credentials", "gmail_api": "jwt_bearer"}


OAUTH2_GRANTS = ("refresh_token", "client_credentials", "jwt_bearer")


@dataclass(frozen=True)
class OAuth2Settings:
    client_id: Optional[str]           # None for jwt_bearer: the service account key names the client
    token_url: str                     # for jwt_bearer the key file's token_uri unless app.config sets one
    scope: Optional[str] = None
    auth_url: Optional[str] = None
    client_secret: Optional[str] = field(default=None, repr=False)
    refresh_token: Optional[str] = field(default=None, repr=False)
    grant: str = "refresh_token"       # one of OAUTH2_GRANTS
    client_certificate: Optional[str] = None      # PEM file (key and certificate): client_credentials without a secret
    client_certificate_password: Optional[str] = field(default=None, repr=False)
    service_account_file: Optional[str] = None    # Google service account JSON key: jwt_bearer
    subject: Optional[str] = None      # the mailbox to send as (XOAUTH2 user; jwt_bearer's sub)

    @property
    def grant_description(self):
        """The grant and its credential, for reasons and logs (no secret in it)."""
        if self.grant == "client_credentials":
            return "client_credentials grant with {0}".format(
                "client_certificate" if self.client_certificate else "client_secret")
        if self.grant == "jwt_bearer":
            return "jwt_bearer grant with service_account_file"
        return "refresh_token grant"


@dataclass(frozen=True)
class MailerSettings:
    smtp_server: str
    smtp_port: int
    ssl_mode: str                      # one of SSL_MODES
    # True: system CA store; str: path of a CA bundle; False: no verification
    ssl_verify: Union[bool, str]
    timeout: float
    smtp_user: Optional[str] = None
    smtp_password: Optional[str] = field(default=None, repr=False)
    from_address: Optional[str] = None
    oauth2: Optional[OAuth2Settings] = None
    template_file: Optional[str] = None
    templates: Dict[str, str] = field(default_factory=dict)
    date_format: Optional[str] = None
    enable_email_conversations: bool = False
    p12_bundle: Optional[str] = None
    p12_password: Optional[str] = field(default=None, repr=False)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    retries: int = DEFAULT_RETRIES
    # True only when the admin accepts credentials in clear (smtp_ssl_mode None, no STARTTLS offered)
    allow_plaintext_auth: bool = False
    connection_reuse: bool = True
    idle_seconds: float = DEFAULT_IDLE_TIMEOUT
    template_timeout: float = DEFAULT_TEMPLATE_TIMEOUT
    template_max_output: int = DEFAULT_MAX_OUTPUT
    template_max_memory: int = DEFAULT_MAX_MEMORY
    transport: str = "smtp"            # one of TRANSPORTS
    graph_url: str = DEFAULT_GRAPH_URL           # a national cloud's Graph endpoint (transport graph)
    gmail_api_url: str = DEFAULT_GMAIL_API_URL   # transport gmail_api

    @property
    def template_limits(self):
        """What one template render may use (seconds, characters of output and of any one value, bytes of
        its render process's memory)."""
        return TemplateLimits(timeout=self.template_timeout, max_output=self.template_max_output,
                              max_memory=self.template_max_memory)

    def template_for_label(self, label):
        """The template path for a label; app.config keys are lower-cased by its parser, so case is ignored."""
        label = (label or "").strip()
        if label in self.templates:
            return self.templates[label]
        folded = label.casefold()
        return next((path for name, path in self.templates.items() if name.casefold() == folded), None)

    @property
    def default_sender(self):
        """from_email_address, else smtp_user when that is an address, else (HTTP transports) the mailbox."""
        if self.from_address:
            return self.from_address
        if self.smtp_user and "@" in self.smtp_user:
            return self.smtp_user
        return self.oauth2.subject if self.transport != "smtp" and self.oauth2 else None


def _text(configs, key, alias=None):
    value = configs.get(key)
    if (value is None or str(value).strip() == "") and alias:
        value = configs.get(alias)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _number(configs, key, default, kind=int, minimum=0, maximum=None):
    raw = _text(configs, key)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):           # float() also reads 'nan' and 'inf'
        raise ConfigurationError("app.config [{0}] {1} = '{2}' is not a number".format(SECTION, key, raw))
    if value < minimum:
        raise ConfigurationError("app.config [{0}] {1} must be at least {2}, not {3}".format(SECTION, key, minimum, raw))
    if maximum is not None and value > maximum:
        # e.g. a port above 65535 would otherwise silently wrap around to another port
        raise ConfigurationError("app.config [{0}] {1} must be at most {2}, not {3}".format(SECTION, key, maximum, raw))
    return value


# Relative template paths of IBM's original app that name a template we ship elsewhere; an app.config kept from
# the original (its generated section has template_file=data/example_send_email.jinja) keeps working.
ORIGINAL_TEMPLATE_PATHS = {
    "data/example_send_email.jinja": "data/templates/example_send_email.jinja",
}


def resolve_package_path(path):
    """Absolute paths stay; relative ones are taken from the package folder."""
    if not path:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(PACKAGE_DIR, path)


def resolve_template_path(path):
    """A template path from app.config: like resolve_package_path; a missing original-app path names our copy."""
    resolved = resolve_package_path(path)
    shipped = ORIGINAL_TEMPLATE_PATHS.get(os.path.normpath(path).replace(os.sep, "/")) if path else None
    if shipped and not os.path.exists(resolved):
        return resolve_package_path(shipped)
    return resolved


def _ssl_mode(configs):
    raw = (_text(configs, "smtp_ssl_mode") or "none").lower()
    if raw in ("none", "no", "false", "plain", "off"):
        return "none"
    if raw in ("starttls", "tls"):
        return "starttls"
    if raw in ("ssl", "smtps", "implicit"):
        return "ssl"
    raise ConfigurationError(
        "app.config [{0}] smtp_ssl_mode = '{1}' is not one of None, starttls, ssl".format(SECTION, raw))


def _ssl_verify(configs):
    raw = _text(configs, "smtp_ssl_cafile")
    if raw is None or raw.lower() in ("true", "yes", "on", "1"):
        return True
    if raw.lower() in ("false", "no", "off", "0"):
        return False
    path = os.path.expanduser(raw)
    if not os.path.isfile(path):
        raise ConfigurationError(
            "app.config [{0}] smtp_ssl_cafile = '{1}' is not a file; give a CA bundle path, true or false".format(SECTION, raw))
    return path


def _oauth2(configs, default_scope=None):
    """OAuth2Settings for the configured grant, None without OAuth2; ConfigurationError for one that cannot work.
    ``default_scope`` is the scope when app.config sets none (an HTTP transport's API)."""
    grant, why = _oauth2_grant(configs)
    if grant is None:
        return None
    values = {key: _text(configs, key) for key in ("client_id", "token_url", "scope", "auth_url", "client_secret",
                                                   "refresh_token")}
    values["scope"] = values["scope"] or default_scope
    values["grant"] = grant
    complete = {"refresh_token": _refresh_token_values, "client_credentials": _client_credentials_values,
                "jwt_bearer": _jwt_bearer_values}[grant]
    return OAuth2Settings(**complete(configs, values, why))


def _oauth2_grant(configs):
    """(grant, why OAuth2 is on: for messages), or (None, None) without OAuth2."""
    grant = _text(configs, "oauth2_grant")
    if grant is not None:
        grant = grant.lower()
        if grant not in OAUTH2_GRANTS:
            raise ConfigurationError("app.config [{0}] oauth2_grant = '{1}' is not one of {2}".format(
                SECTION, grant, ", ".join(OAUTH2_GRANTS)))
        return grant, "oauth2_grant = {0}".format(grant)
    for key, needed in (("client_certificate", "client_credentials"), ("service_account_file", "jwt_bearer")):
        if _text(configs, key):
            raise ConfigurationError("app.config [{0}] {1} is set but oauth2_grant is not: set oauth2_grant = "
                                     "{2}".format(SECTION, key, needed))
    if _text(configs, "client_id"):
        return "refresh_token", "client_id is set"      # the configuration before oauth2_grant existed
    return None, None


def _require(configs, why, *keys, hint=""):
    missing = [key for key in keys if not _text(configs, key)]
    if missing:
        raise ConfigurationError("app.config [{0}] {1}, so OAuth2 also needs: {2}{3}".format(
            SECTION, why, ", ".join(missing), hint))


def _refresh_token_values(configs, values, why):
    _require(configs, why, "client_id", "token_url", "refresh_token",
             hint="" if _text(configs, "refresh_token") else
             " (run `outbound-email oauth2-token`; or sign in app-only: set oauth2_grant = client_credentials "
             "or jwt_bearer)")
    subject = _text(configs, "oauth2_subject")
    values["subject"] = _mailbox(subject, "oauth2_subject") if subject else None
    return values


def _client_credentials_values(configs, values, why):
    from fn_outbound_email.lib.auth.keys import load_client_certificate   # PyJWT only for the grants that sign
    _require(configs, why, "client_id", "token_url")
    values["subject"] = _app_mailbox(configs, why)
    certificate = _text(configs, "client_certificate")
    if bool(certificate) == bool(values["client_secret"]):
        raise ConfigurationError("app.config [{0}] {1} needs exactly one client credential: client_secret or "
                                 "client_certificate (a PEM file with the private key and certificate){2}".format(
                                     SECTION, why, ", not both" if certificate else ""))
    if certificate:
        values["client_certificate"] = os.path.expanduser(certificate)
        values["client_certificate_password"] = _text(configs, "client_certificate_password")
        load_client_certificate(values["client_certificate"], values["client_certificate_password"])   # checks it
    return values


def _jwt_bearer_values(configs, values, why):
    from fn_outbound_email.lib.auth.keys import load_service_account
    _require(configs, why, "service_account_file")
    if not values["scope"]:
        _require(configs, why, "scope", hint=" (Gmail: scope = https://mail.google.com/)")
    values["subject"] = _app_mailbox(configs, why)
    values["service_account_file"] = os.path.expanduser(_text(configs, "service_account_file"))
    account = load_service_account(values["service_account_file"])
    values["token_url"] = values["token_url"] or account.token_uri
    if not values["token_url"]:
        raise ConfigurationError("app.config [{0}] service_account_file has no token_uri: set token_url "
                                 "(Google: https://oauth2.googleapis.com/token)".format(SECTION))
    return values


def _mailbox(text, key):
    try:
        return parse_address(text, "app.config [{0}] {1}".format(SECTION, key)).addr_spec
    except ValueError as err:
        raise ConfigurationError(str(err))


def _app_mailbox(configs, why):
    """The mailbox an app-only token sends as: oauth2_subject, else smtp_user, else from_email_address."""
    for key in ("oauth2_subject", "smtp_user", "from_email_address"):
        text = _text(configs, key)
        if text:
            return _mailbox(text, key)
    raise ConfigurationError("app.config [{0}] {1} needs the mailbox to send as: set oauth2_subject (or "
                             "from_email_address)".format(SECTION, why))


def load_oauth2_settings(opts):
    """The OAuth2Settings of app.config (``opts``), None when OAuth2 is not configured."""
    values = opts.get(SECTION) or {}
    return _oauth2(values, _default_scope(_transport(values), values))


def configured_templates(opts):
    """{label: absolute path} from the [fn_outbound_email:templates] section, in app.config order."""
    templates = {}
    for label, path in (opts.get(TEMPLATES_SECTION) or {}).items():
        if str(path or "").strip():
            templates[str(label).strip()] = resolve_template_path(str(path).strip())
    return templates


def _transport(configs):
    raw = (_text(configs, "transport") or "smtp").lower()
    if raw not in TRANSPORTS:
        raise ConfigurationError("app.config [{0}] transport = '{1}' is not one of {2}".format(
            SECTION, raw, ", ".join(TRANSPORTS)))
    return raw


def _api_url(configs, key, default):
    """An HTTP transport's base URL: https, or http to this host only (a local test endpoint)."""
    from urllib.parse import urlsplit
    url = (_text(configs, key) or default).rstrip("/")
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local) or not parts.hostname:
        raise ConfigurationError("app.config [{0}] {1} = '{2}' is not an https URL (e.g. {3})".format(
            SECTION, key, url, default))
    return url


def _default_scope(transport, configs):
    """The scope an HTTP transport's token needs, when app.config sets none."""
    if transport == "graph":
        return _api_url(configs, "graph_url", DEFAULT_GRAPH_URL) + "/.default"
    return GMAIL_SEND_SCOPE if transport == "gmail_api" else None


def _check_transport_grant(transport, oauth2):
    """An HTTP transport signs in app-only with its provider's grant; anything else cannot send."""
    needed = TRANSPORT_GRANTS.get(transport)
    if needed is None or (oauth2 is not None and oauth2.grant == needed):
        return
    example = {"client_credentials": "client_id, client_secret (or client_certificate) and token_url "
                                     "(https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token)",
               "jwt_bearer": "service_account_file"}[needed]
    raise ConfigurationError("app.config [{0}] transport = {1} signs in with oauth2_grant = {2}, not {3}: set "
                             "oauth2_grant = {2} with {4}".format(
                                 SECTION, transport, needed, oauth2.grant if oauth2 else "none", example))


def load_settings(opts):
    """Read the app's settings from the resilient-circuits ``opts``.

    Raises ConfigurationError (a MailError) naming the key that is wrong.
    """
    configs = opts.get(SECTION) or {}
    transport = _transport(configs)
    try:
        validate_fields(["smtp_server"], configs)
        blank = _text(configs, "smtp_server") is None       # validate_fields lets a value of spaces through
    except ValueError:
        blank = True
    if blank and transport == "smtp":
        raise ConfigurationError("app.config [{0}] smtp_server is required".format(SECTION))

    ssl_mode = _ssl_mode(configs)
    smtp_user = _text(configs, "smtp_user")
    smtp_password = _text(configs, "smtp_password")
    oauth2 = _oauth2(configs, _default_scope(transport, configs))
    _check_transport_grant(transport, oauth2)
    if smtp_user and not smtp_password and not oauth2:
        raise ConfigurationError(
            "app.config [{0}] smtp_user is set but neither smtp_password nor OAuth2 (client_id, token_url, "
            "refresh_token) is configured".format(SECTION))

    templates = configured_templates(opts)
    return MailerSettings(
        smtp_server=_text(configs, "smtp_server") or "",
        smtp_port=_number(configs, "smtp_port", DEFAULT_PORTS[ssl_mode], minimum=1, maximum=65535),
        ssl_mode=ssl_mode,
        ssl_verify=_ssl_verify(configs),
        timeout=_number(configs, "smtp_conn_timeout", DEFAULT_TIMEOUT, kind=float, minimum=1),
        smtp_user=smtp_user,
        smtp_password=smtp_password,
        from_address=_text(configs, "from_email_address"),
        oauth2=oauth2,
        template_file=resolve_template_path(_text(configs, "template_file")),
        templates=templates,
        date_format=_text(configs, "date_format"),
        enable_email_conversations=str_to_bool(_text(configs, "enable_email_conversations") or "false"),
        p12_bundle=_text(configs, "p12_signing_encrypting_cert", alias="p12_signing_cert"),
        p12_password=_text(configs, "p12_signing_encrypting_cert_password", alias="p12_signing_cert_password"),
        max_message_size=_number(configs, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE, minimum=1),
        retries=_number(configs, "smtp_retries", DEFAULT_RETRIES, minimum=0),
        allow_plaintext_auth=str_to_bool(_text(configs, "smtp_allow_plaintext_auth") or "false"),
        connection_reuse=str_to_bool(_text(configs, "smtp_connection_reuse") or "true"),
        idle_seconds=_number(configs, "smtp_idle_timeout", DEFAULT_IDLE_TIMEOUT, kind=float, minimum=1, maximum=290),
        template_timeout=_number(configs, "template_timeout", DEFAULT_TEMPLATE_TIMEOUT, kind=float, minimum=0.01),
        template_max_output=_number(configs, "template_max_output", DEFAULT_MAX_OUTPUT, minimum=1),
        template_max_memory=_number(configs, "template_max_memory", DEFAULT_MAX_MEMORY, minimum=MIN_MAX_MEMORY),
        transport=transport,
        graph_url=_api_url(configs, "graph_url", DEFAULT_GRAPH_URL),
        gmail_api_url=_api_url(configs, "gmail_api_url", DEFAULT_GMAIL_API_URL),
    )
