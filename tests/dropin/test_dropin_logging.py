# -*- coding: utf-8 -*-
"""Log lines survive resilient-circuits' RedactingFilter.

resilient-circuits puts RedactingFilter on its log handlers; the filter turns every argument of a record
into a str before the handler formats it, and sets logging.raiseExceptions = False, so a format string with
%d or %f fails to format and the line is silently lost. The dynamic test logs a send, a retried send and an
OAuth2 token fetch through such a handler and formats every record the app wrote; the static test finds
any log call in the package whose format string has a conversion other than %s.
"""

import ast
import logging
import os
import re

import pytest
from resilient_circuits.app import App
from resilient_circuits.filters import RedactingFilter

from fn_outbound_email.lib.auth import oauth2
from fn_outbound_email.lib.delivery import base as delivery_base
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from tests.support.fault_smtp import Fault, FaultSmtpServer
from tests.support.oauth2_server import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeOAuth2Server
from tests.support.smtp_server import SMTP_USER, SmtpTestServer

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fn_outbound_email")

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class FormattingHandler(logging.Handler):
    """A resilient-circuits style handler: RedactingFilter, its file log format; keeps each formatted line and
    each record that failed to format."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter(App.FILE_LOG_FORMAT))
        self.addFilter(RedactingFilter())
        self.lines, self.failures = [], []

    def emit(self, record):
        try:
            self.lines.append(self.format(record))
        except Exception as err:       # what logging would swallow with raiseExceptions off
            self.failures.append("{0}:{1} {2!r}: {3}".format(record.pathname, record.lineno, record.msg, err))


@pytest.fixture
def app_log():
    logger = logging.getLogger("fn_outbound_email")
    handler, level = FormattingHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def mailer(port, **values):
    section = {"smtp_server": "127.0.0.1", "smtp_port": str(port), "from_email_address": "soar@example.com",
               "smtp_conn_timeout": "5", "smtp_retries": "0"}
    section.update(values)
    return Mailer(load_settings({"fn_outbound_email": section}), soar=None)


def send(mailer_instance):
    return mailer_instance.send(MailRequest(incident_id=1, to="alice@example.com", subject="Log test", body="b"))


def test_every_record_of_a_send_a_retry_and_a_token_fetch_formats(app_log, monkeypatch):
    monkeypatch.setattr(delivery_base, "BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(oauth2, "_caches", {})

    with SmtpTestServer() as server:
        send(mailer(server.port))
        assert len(server.messages) == 1

    with FaultSmtpServer(data=Fault("451 4.3.0 Try again later", times=1)) as server:
        send(mailer(server.port, smtp_retries="2"))
        assert len(server.messages) == 1

    with FakeOAuth2Server() as oauth, SmtpTestServer(xoauth2=oauth.accepts) as server:
        # the test server takes XOAUTH2 without TLS, so the app must be allowed to authenticate in plain text
        send(mailer(server.port, smtp_user=SMTP_USER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                    token_url=oauth.token_url, refresh_token=REFRESH_TOKEN, smtp_allow_plaintext_auth="true"))
        assert len(oauth.token_requests) == 1 and len(server.messages) == 1

    assert app_log.failures == []
    messages = [line.split("] ", 2)[-1] for line in app_log.lines]
    assert sum(message.startswith("Sent <") for message in messages) == 3           # the audit line, every send
    assert any("Transient SMTP failure" in message and "451" in message for message in messages)
    assert any("OAuth2: new access token" in message for message in messages)
    # the filter ran (each argument became a str) and nothing secret got into a line
    assert not any(secret in line for line in app_log.lines for secret in (CLIENT_SECRET, REFRESH_TOKEN))


def test_the_filter_really_breaks_a_percent_d_line():
    # the reason for the rule: once the filter made the argument a str, %d cannot format it (the records go to
    # the handler directly, as pytest's own log capture would raise on the broken one)
    handler = FormattingHandler()
    for format_string in ("%d bytes", "%s bytes"):
        record = logging.LogRecord("fn_outbound_email.test", logging.INFO, __file__, 1, format_string, (5,), None)
        handler.handle(record)
    assert len(handler.failures) == 1 and "%d bytes" in handler.failures[0]
    assert len(handler.lines) == 1 and handler.lines[0].endswith("5 bytes")


# --- static: every log call's format string uses %s only ----------------------------------------------------
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
LOGGER_NAMES = re.compile(r"^(LOG|log|logger|LOGGER|_log|_LOG)$")
# printf-style conversions: %[(name)][flags][width][.precision][length]type
CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(.)")


def is_logger(node):
    """LOG.info, self.LOG.info, logging.info, logging.getLogger(...).info ..."""
    if isinstance(node, ast.Name):
        return bool(LOGGER_NAMES.match(node.id)) or node.id == "logging"
    if isinstance(node, ast.Attribute):
        return bool(LOGGER_NAMES.match(node.attr))
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger"
    return False


def log_format_strings(tree):
    """(line, format string) of every logging call whose format string is a literal."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS and is_logger(node.func.value)):
            continue
        position = 1 if node.func.attr == "log" else 0
        if len(node.args) > position and isinstance(node.args[position], ast.Constant) \
                and isinstance(node.args[position].value, str):
            yield node.lineno, node.args[position].value


def bad_conversions(format_string):
    return [match.group(0) for match in CONVERSION.finditer(format_string) if match.group(1) not in ("s", "%")]


def python_files():
    for folder, _, names in os.walk(PACKAGE_DIR):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_log_format_strings_use_percent_s_only():
    found, offending = 0, []
    for path in python_files():
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read(), filename=path)
        for line, format_string in log_format_strings(tree):
            found += 1
            if bad_conversions(format_string):
                offending.append("{0}:{1} {2!r}".format(os.path.relpath(path, PACKAGE_DIR), line, format_string))
    assert found > 10, "the scan found almost no log calls; is it looking at the package?"
    assert offending == []


@pytest.mark.parametrize("format_string, bad", [
    ("%s sent, %s refused", []), ("100%% done: %s", []), ("%(name)s", []),
    ("%d bytes", ["%d"]), ("%.2f s", ["%.2f"]), ("%5s|%-3d", ["%-3d"]), ("%(count)d", ["%(count)d"]),
    ("%r", ["%r"]), ("%x", ["%x"]),
])
def test_the_scan_tells_good_from_bad(format_string, bad):
    assert bad_conversions(format_string) == bad


def test_the_scan_finds_calls_in_every_form():
    tree = ast.parse("LOG.info('%d a', 1)\nself.LOG.warning('%f b', 2)\nlogging.getLogger(__name__).error('%i c', 3)\n"
                     "LOG.log(logging.INFO, '%x d', 4)\nprint('%d not a log call' % 5)\n")
    assert [text for _, text in log_format_strings(tree)] == ["%d a", "%f b", "%i c", "%x d"]
