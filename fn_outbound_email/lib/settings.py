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

from fn_outbound_email.lib.errors import ConfigurationError
from fn_outbound_email.lib.template_limits import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, TemplateLimits

SECTION = "fn_outbound_email"
TEMPLATES_SECTION = "fn_outbound_email:templates"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SSL_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TIMEOUT = 20
DEFAULT_RETRIES = 2
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024


@dataclass(frozen=True)
class OAuth2Settings:
    client_id: str
    token_url: str
    scope: Optional[str] = None
    auth_url: Optional[str] = None
    client_secret: Optional[str] = field(default=None, repr=False)
    refresh_token: Optional[str] = field(default=None, repr=False)


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
    template_timeout: float = DEFAULT_TIMEOUT
    template_max_output: int = DEFAULT_MAX_OUTPUT

    @property
    def template_limits(self):
        """What one template render may use (seconds, characters of output and of any one value)."""
        return TemplateLimits(timeout=self.template_timeout, max_output=self.template_max_output)

    def template_for_label(self, label):
        """The template path for a label; app.config keys are lower-cased by its parser, so case is ignored."""
        label = (label or "").strip()
        if label in self.templates:
            return self.templates[label]
        folded = label.casefold()
        return next((path for name, path in self.templates.items() if name.casefold() == folded), None)

    @property
    def default_sender(self):
        """from_email_address, else smtp_user when that is an address."""
        if self.from_address:
            return self.from_address
        if self.smtp_user and "@" in self.smtp_user:
            return self.smtp_user
        return None


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


def resolve_package_path(path):
    """Absolute paths stay; relative ones are taken from the package folder."""
    if not path:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(PACKAGE_DIR, path)


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


def _oauth2(configs):
    client_id = _text(configs, "client_id")
    if not client_id:
        return None
    missing = [key for key in ("token_url", "refresh_token") if not _text(configs, key)]
    if missing:
        raise ConfigurationError(
            "app.config [{0}] client_id is set, so OAuth2 also needs: {1}".format(SECTION, ", ".join(missing)))
    return OAuth2Settings(
        client_id=client_id,
        token_url=_text(configs, "token_url"),
        scope=_text(configs, "scope"),
        auth_url=_text(configs, "auth_url"),
        client_secret=_text(configs, "client_secret"),
        refresh_token=_text(configs, "refresh_token"),
    )


def configured_templates(opts):
    """{label: absolute path} from the [fn_outbound_email:templates] section, in app.config order."""
    templates = {}
    for label, path in (opts.get(TEMPLATES_SECTION) or {}).items():
        if str(path or "").strip():
            templates[str(label).strip()] = resolve_package_path(str(path).strip())
    return templates


def load_settings(opts):
    """Read the app's settings from the resilient-circuits ``opts``.

    Raises ConfigurationError (a MailError) naming the key that is wrong.
    """
    configs = opts.get(SECTION) or {}
    try:
        validate_fields(["smtp_server"], configs)
        blank = _text(configs, "smtp_server") is None       # validate_fields lets a value of spaces through
    except ValueError:
        blank = True
    if blank:
        raise ConfigurationError("app.config [{0}] smtp_server is required".format(SECTION))

    ssl_mode = _ssl_mode(configs)
    smtp_user = _text(configs, "smtp_user")
    smtp_password = _text(configs, "smtp_password")
    oauth2 = _oauth2(configs)
    if smtp_user and not smtp_password and not oauth2:
        raise ConfigurationError(
            "app.config [{0}] smtp_user is set but neither smtp_password nor OAuth2 (client_id, token_url, "
            "refresh_token) is configured".format(SECTION))

    templates = configured_templates(opts)
    return MailerSettings(
        smtp_server=_text(configs, "smtp_server"),
        smtp_port=_number(configs, "smtp_port", DEFAULT_PORTS[ssl_mode], minimum=1, maximum=65535),
        ssl_mode=ssl_mode,
        ssl_verify=_ssl_verify(configs),
        timeout=_number(configs, "smtp_conn_timeout", DEFAULT_TIMEOUT, kind=float, minimum=1),
        smtp_user=smtp_user,
        smtp_password=smtp_password,
        from_address=_text(configs, "from_email_address"),
        oauth2=oauth2,
        template_file=resolve_package_path(_text(configs, "template_file")),
        templates=templates,
        date_format=_text(configs, "date_format"),
        enable_email_conversations=str_to_bool(_text(configs, "enable_email_conversations") or "false"),
        p12_bundle=_text(configs, "p12_signing_encrypting_cert", alias="p12_signing_cert"),
        p12_password=_text(configs, "p12_signing_encrypting_cert_password", alias="p12_signing_cert_password"),
        max_message_size=_number(configs, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE, minimum=1),
        retries=_number(configs, "smtp_retries", DEFAULT_RETRIES, minimum=0),
        template_timeout=_number(configs, "template_timeout", DEFAULT_TIMEOUT, kind=float, minimum=0.01),
        template_max_output=_number(configs, "template_max_output", DEFAULT_MAX_OUTPUT, minimum=1),
    )
