# -*- coding: utf-8 -*-
"""Pieces shared by the ``outbound-email`` subcommands."""

import email
import email.policy
import logging
import os
import sys
import threading

from fn_outbound_email.lib.errors import ConfigurationError, MailError, TemplateError
from fn_outbound_email.lib.settings import resolve_package_path
from fn_outbound_email.lib.templates.worker import renderer as app_renderer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TEMPLATE_ERROR = 2

SHIPPED_TEMPLATE = resolve_package_path(os.path.join("data", "templates", "example_send_email.jinja"))
# what the Mailer puts in a template's context; template variables given on the command line cannot replace them
APP_CONTEXT_NAMES = frozenset(("incident", "artifact", "note", "mail", "template_helper"))


class TemplateVariablesRenderer:
    """The app's template renderer, with extra template variables added to every context.

    The shipped template reads its switches (``show_artifacts``, ``show_notes``)
    with ``| default(false)``: a variable in the context is the way to turn
    them on without editing the template. The app's own context wins over
    these variables.
    """

    def __init__(self, variables, renderer=app_renderer):
        self._variables = dict(variables)
        self._renderer = renderer
        self.warnings = []          # (template name, template_check.TemplateWarning) of every render, in order

    def render(self, source, context, name="inline template", limits=None):
        return self._keep_warnings(name, self._renderer.render(source, dict(self._variables, **context), name=name,
                                                               limits=limits))

    def render_file(self, path, context, limits=None):
        return self._keep_warnings(path, self._renderer.render_file(path, dict(self._variables, **context),
                                                                    limits=limits))

    def _keep_warnings(self, name, rendered):
        self.warnings.extend((name, warning) for warning in getattr(rendered, "warnings", ()))
        return rendered


class BackgroundServer:
    """Context manager: a socketserver server answering from a daemon thread inside the with-block."""

    def __init__(self, server, name):
        self.server = server
        # a short poll interval: shutdown() waits up to one interval, and a command should end promptly
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                                        daemon=True)

    @property
    def port(self):
        return self.server.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def error(command, message):
    print("outbound-email {0}: error: {1}".format(command, message), file=sys.stderr)


def print_template_warnings(command, renderer):
    """The template's mistakes that rendered silently (see lib/templates/check.py), one line each, on stderr."""
    for name, warning in renderer.warnings:
        print("outbound-email {0}: warning: {1} {2}".format(command, name, warning), file=sys.stderr)


def report_failure(command, err, template_path=None):
    """Print why a subcommand failed and return its exit code; None when ``err`` is not one it reports."""
    if isinstance(err, TemplateError):
        error(command, "{0}: {1}".format(template_path, err) if template_path else err)
        return EXIT_TEMPLATE_ERROR
    if isinstance(err, (MailError, ValueError)):     # ValueError: bad input, OfflineDataError included
        error(command, err)
        return EXIT_FAILED
    if isinstance(err, OSError):
        error(command, file_error_text(err))
        return EXIT_FAILED
    return None


# where resilient-circuits looks for app.config when none is named (resilient.get_config_file), in that order
DEFAULT_CONFIG_HELP = ("default: ./app.config, else ~/.resilient/app.config, when it exists; $APP_CONFIG_FILE, "
                       "when set, wins over both")


def default_app_config_path(path=None):
    """``path`` (a -c option), else the app.config resilient-circuits would read when that exists, else None."""
    if path:
        return path
    from resilient import get_config_file
    default = get_config_file()
    return default if os.path.isfile(default) else None


def read_app_config(path):
    """The app.config as resilient-circuits reads it (secrets via $ENV, ^keyring or PAM resolved on access)."""
    if not os.path.isfile(path):
        raise ConfigurationError("The app.config file '{0}' does not exist".format(path))
    from resilient_circuits.app import AppArgumentParser
    try:
        parser = AppArgumentParser(config_file=path)
        opts = parser.parse_args(args=[])
    except Exception as err:   # configparser errors, a missing [resilient] section ...
        raise ConfigurationError("The app.config file '{0}' cannot be read: {1}".format(path, err))
    # the parser adds a temporary root log handler (resilient-circuits replaces it later); we have ours
    logging.getLogger().removeHandler(getattr(parser, "temp_handler", None))
    return opts


def file_error_text(err):
    """'path: reason' for an OSError (a folder that cannot be created, a file that cannot be written)."""
    return "{0}: {1}".format(err.filename, err.strerror) if err.filename and err.strerror else str(err)


def parse_message(message_bytes):
    """An EmailMessage from wire bytes (CRLF read as Python line ends, as a mail client shows the text)."""
    return email.message_from_bytes(message_bytes.replace(b"\r\n", b"\n"), policy=email.policy.default)


def describe_parts(message, indent="    "):
    """The MIME tree as indented lines: content type, file name and size of attachments."""
    lines = []

    def visit(part, depth):
        line = indent + "  " * depth + part.get_content_type()
        if part.get_filename():
            line += "  {0} ({1} bytes)".format(part.get_filename(), len(part.get_payload(decode=True) or b""))
        lines.append(line)
        if part.is_multipart():
            for child in part.iter_parts():
                visit(child, depth + 1)

    visit(message, 0)
    return lines


def write_file(path, content):
    """Write text or bytes, creating the folder; returns the path."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    mode, encoding = ("wb", None) if isinstance(content, bytes) else ("w", "utf-8")
    with open(path, mode, encoding=encoding) as handle:
        handle.write(content)
    return path
