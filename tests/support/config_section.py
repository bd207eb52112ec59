# -*- coding: utf-8 -*-
"""The app.config a test hands the app, built in one place: as resilient-circuits' ``opts`` (``section``),
as app.config text for pytest-resilient-circuits (``app_config``), or as a ready Mailer (``mailer``).

The app sends to 127.0.0.1:``port`` with a 5 s timeout and no retries unless the settings given say
otherwise; a setting given as None is left out. ``templates`` ({label: path}) fills
[fn_outbound_email:templates].
"""

from fn_outbound_email.lib.mailer import Mailer
from fn_outbound_email.lib.settings import SECTION, TEMPLATES_SECTION, load_settings

TEST_DEFAULTS = {"smtp_server": "127.0.0.1", "smtp_conn_timeout": 5, "smtp_retries": 0}


def section(port, templates=None, **settings):
    """The ``opts`` dict: {"fn_outbound_email": {...}} (values as text, as app.config gives them)."""
    values = dict(TEST_DEFAULTS, smtp_port=port)
    values.update(settings)
    opts = {SECTION: {key: _text(value) for key, value in values.items() if value is not None}}
    if templates:
        opts[TEMPLATES_SECTION] = dict(templates)
    return opts


def app_config(port, templates=None, **settings):
    """The same settings as app.config text (a test module's ``config_data``)."""
    opts = section(port, templates, **settings)
    lines = ["[{0}]".format(SECTION)] + ["{0} = {1}".format(*item) for item in opts[SECTION].items()]
    if templates:
        lines += ["", "[{0}]".format(TEMPLATES_SECTION)] + ["{0} = {1}".format(*item) for item in templates.items()]
    return "\n".join(lines) + "\n"


def mailer(port, soar=None, **settings):
    """A Mailer with these settings and ``soar`` (None: a test that needs no SOAR data)."""
    return Mailer(load_settings(section(port, **settings)), soar=soar)


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
