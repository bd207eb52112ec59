# -*- coding: utf-8 -*-
"""OAuth2: refresh-token grant against a real local token endpoint, AUTH XOAUTH2 against aiosmtpd.

The SMTP server accepts only access tokens the local token endpoint issued (and has not revoked).
"""

import base64
import logging
import os
import socket
import sys
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from fn_outbound_email.cli.main import main
from fn_outbound_email.lib.auth import oauth2, xoauth2
from fn_outbound_email.lib.auth.oauth2 import OAuth2TokenProvider
from fn_outbound_email.lib.auth.xoauth2 import OAuth2Authenticator
from fn_outbound_email.lib.delivery.smtp.transport import SmtpTransport
from fn_outbound_email.lib.errors import DeliveryError, OAuth2Error
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from fn_outbound_email.util.selftest import selftest_function
from tests.support import config_section
from tests.support.function_runner import app_config, call_function
from tests.support.oauth2_server import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeOAuth2Server
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

SLOWNESS = float(os.environ.get("TEST_SLOWNESS", "1"))

SCOPE = "https://mail.example.com/.default offline_access"
APP_SMTP_PORT = free_port()
APP_OAUTH_PORT = free_port()

# send_email2 through resilient-circuits: both the password and OAuth2 are configured (OAuth2 must win)
config_data = app_config(APP_SMTP_PORT, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD,
                         from_email_address="SOAR Notifier <soar@example.com>", client_id=CLIENT_ID,
                         client_secret=CLIENT_SECRET, scope=SCOPE,
                         token_url="http://127.0.0.1:{0}/token".format(APP_OAUTH_PORT), refresh_token=REFRESH_TOKEN,
                         smtp_connection_reuse="false", smtp_allow_plaintext_auth=True)

resilient_mock = SoarMock
# the XOAUTH2 test server takes tokens without TLS, which aiosmtpd warns about
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(autouse=True)
def fresh_token_caches(monkeypatch):
    # tokens are cached per configuration for the whole process; each test starts without any
    monkeypatch.setattr(oauth2, "_caches", {})


@pytest.fixture
def oauth():
    with FakeOAuth2Server() as server:
        yield server


@pytest.fixture
def smtp(oauth):
    with SmtpTestServer(xoauth2=oauth.accepts) as server:
        yield server


def section(oauth, smtp_port, **values):
    configs = {"smtp_user": SMTP_USER, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
               "scope": SCOPE, "token_url": oauth.token_url, "refresh_token": REFRESH_TOKEN,
               # a new session per send, so each send authenticates: these tests are about the tokens
               "smtp_connection_reuse": "false",
               "smtp_allow_plaintext_auth": "true"}     # the XOAUTH2 test server has no TLS
    configs.update(values)
    return config_section.section(smtp_port, **configs)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def mailer(oauth, smtp, clock=None, **values):
    settings = load_settings(section(oauth, smtp.port, **values))
    provider = OAuth2TokenProvider(settings.oauth2, None, clock=clock or Clock())
    transport = SmtpTransport(settings, OAuth2Authenticator(settings.smtp_user or settings.from_address, provider))
    return Mailer(settings, soar=None, transport=transport)


def send(mailer_, subject="OAuth2 test"):
    return mailer_.send(MailRequest(incident_id=INCIDENT_ID, to="alice@example.com", sender="soar@example.com",
                                    subject=subject, body="Sent with XOAUTH2"))


def tokens_tried(smtp):
    return [(token, accepted) for _, token, accepted in smtp.handler.xoauth2_attempts]


# --- token caching ----------------------------------------------------------------------------------------
def test_two_sends_make_one_token_request(oauth, smtp):
    sender = mailer(oauth, smtp)
    send(sender, "first")
    send(sender, "second")
    assert [m.message["Subject"] for m in smtp.messages] == ["first", "second"]
    assert all(m.auth_user == SMTP_USER for m in smtp.messages)
    assert oauth.token_requests == [{"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                     "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN, "scope": SCOPE}]
    assert tokens_tried(smtp) == [("access-Token-1", True), ("access-Token-1", True)]


def test_token_is_replaced_a_minute_before_it_expires(oauth, smtp):
    clock = Clock()
    sender = mailer(oauth, smtp, clock=clock)
    send(sender)
    clock.now += 3600 - 61            # 61 s left: still used
    send(sender)
    assert len(oauth.token_requests) == 1
    clock.now += 2                    # 59 s left: replaced before use
    send(sender)
    assert len(oauth.token_requests) == 2
    assert [token for token, _ in tokens_tried(smtp)] == ["access-Token-1", "access-Token-1", "access-Token-2"]
    assert len(smtp.messages) == 3


def test_missing_expires_in_means_an_hour(oauth, smtp):
    oauth.expires_in = None
    clock = Clock()
    sender = mailer(oauth, smtp, clock=clock)
    send(sender)
    clock.now += 3000
    send(sender)
    assert len(oauth.token_requests) == 1


def test_concurrent_callers_cause_one_token_request(oauth):
    oauth.delay = 0.2                 # every caller arrives while the first request is still open
    settings = load_settings(section(oauth, 25))
    barrier = threading.Barrier(6)
    tokens = []

    def fetch():
        provider = OAuth2TokenProvider(settings.oauth2)     # as each function call builds its own
        barrier.wait()
        tokens.append(provider.access_token().value)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tokens == ["access-Token-1"] * 6
    assert len(oauth.token_requests) == 1


# --- refusals and retries -----------------------------------------------------------------------------------
@pytest.mark.parametrize("challenge", [True, False], ids=["json-challenge", "plain-535"])
def test_revoked_cached_token_gets_one_refresh_and_retry(oauth, smtp, challenge):
    smtp.handler.challenge_on_refusal = challenge
    sender = mailer(oauth, smtp)
    send(sender, "first")
    oauth.revoke_access_tokens()      # the provider revoked the token before it expired
    send(sender, "second")
    assert tokens_tried(smtp) == [("access-Token-1", True), ("access-Token-1", False), ("access-Token-2", True)]
    assert len(oauth.token_requests) == 2
    assert [m.message["Subject"] for m in smtp.messages] == ["first", "second"]


def test_refused_fresh_token_is_not_retried(oauth):
    with SmtpTestServer(xoauth2=lambda user, token: False) as smtp:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(oauth, smtp))
        reason = str(raised.value)
        assert "refused XOAUTH2 for user '{0}'".format(SMTP_USER) in reason
        assert "535 5.7.8" in reason and '"status": "400"' in reason        # the reply and the JSON challenge
        assert "check that scope grants SMTP sending" in reason
        assert len(smtp.handler.xoauth2_attempts) == 1 and len(oauth.token_requests) == 1
        assert smtp.messages == []


def test_refused_after_refresh_fails_with_the_reply(oauth, smtp):
    sender = mailer(oauth, smtp)
    send(sender)
    smtp.handler.accept = lambda user, token: False
    with pytest.raises(DeliveryError) as raised:
        send(sender)
    assert "535" in str(raised.value) and "scope" in str(raised.value)
    assert len(smtp.handler.xoauth2_attempts) == 3 and len(oauth.token_requests) == 2
    assert len(smtp.messages) == 1


def test_invalid_grant_names_the_error_and_the_fix_and_sends_nothing(oauth, smtp):
    oauth.error = (400, {"error": "invalid_grant",
                         "error_description": "AADSTS70008: The provided grant has expired\r\n due to inactivity."})
    with pytest.raises(OAuth2Error) as raised:
        send(mailer(oauth, smtp))
    reason = str(raised.value)
    assert "invalid_grant: AADSTS70008: The provided grant has expired due to inactivity." in reason
    assert oauth.token_url in reason and "HTTP 400" in reason
    assert "outbound-email oauth2-token" in reason
    assert smtp.messages == [] and smtp.handler.xoauth2_attempts == []


def test_wrong_client_secret_says_so(oauth, smtp):
    with pytest.raises(OAuth2Error) as raised:
        send(mailer(oauth, smtp, client_secret="wrong"))
    assert "invalid_client" in str(raised.value) and "check client_id and client_secret" in str(raised.value)
    assert smtp.messages == []


def test_unreachable_token_endpoint_gives_the_reason(oauth, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OAuth2Error) as raised:
        send(mailer(oauth, smtp, token_url="http://127.0.0.1:{0}/token".format(free_port())))
    assert "Cannot connect to the OAuth2 token endpoint" in str(raised.value)
    assert "Connection refused" in str(raised.value)
    assert smtp.messages == []
    # the clean reason only: not resilient_lib's raw ERROR line of the requests exception before it
    assert not [record for record in caplog.records if record.name.startswith("resilient_lib")
                and record.levelno >= logging.ERROR]


def test_token_request_goes_through_the_app_proxy(oauth, smtp, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # token_url names a host that does not resolve: only the [integrations] proxy (the local server) gets there
    opts = section(oauth, smtp.port, token_url="http://login.example.invalid/token")
    opts["integrations"] = {"http_proxy": oauth.base_url}
    settings = load_settings(opts)
    from resilient_lib import RequestsCommon
    provider = OAuth2TokenProvider(settings.oauth2, RequestsCommon(opts, opts["fn_outbound_email"]))
    assert provider.access_token().value == "access-Token-1"


@pytest.mark.parametrize("token_url, warned", [
    ("http://login.example.invalid/token", True),
    ("http://192.0.2.7/token", True),
    ("http://127.0.0.1/token", False),
    ("http://[::1]/token", False),
    ("http://localhost/token", False),
    ("HTTP://login.example.invalid/token", True),
])
def test_a_plain_http_token_url_to_another_host_is_warned_about(oauth, smtp, monkeypatch, caplog, token_url, warned):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    opts = section(oauth, smtp.port, token_url=token_url)
    opts["integrations"] = {"http_proxy": oauth.base_url}       # the local server answers for every host
    from resilient_lib import RequestsCommon
    provider = OAuth2TokenProvider(load_settings(opts).oauth2, RequestsCommon(opts, opts["fn_outbound_email"]))
    with caplog.at_level(logging.WARNING, logger=oauth2.__name__):
        provider.access_token()
    warnings = [record.getMessage() for record in caplog.records if "unencrypted" in record.getMessage()]
    assert bool(warnings) is warned, warnings
    if warned:
        assert warnings == ["token_url {0} is plain http:// to a host other than this machine: the client "
                            "credential, the refresh token and the access token cross the network unencrypted. "
                            "Use an https:// token_url".format(token_url)]
        assert CLIENT_SECRET not in warnings[0] and REFRESH_TOKEN not in warnings[0]


def test_rotated_refresh_token_is_used_and_admin_warned(oauth, smtp, caplog):
    oauth.rotate = True               # the old refresh token stops working once a new one is issued
    clock = Clock()
    sender = mailer(oauth, smtp, clock=clock)
    with caplog.at_level(logging.DEBUG):
        send(sender)
        clock.now += 3600
        send(sender)
    assert [form["refresh_token"] for form in oauth.token_requests] == [REFRESH_TOKEN, "refresh-Rotated-1"]
    assert len(smtp.messages) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "rotation" in r.getMessage()]
    assert len(warnings) == 2 and "update refresh_token in app.config" in warnings[0]
    for secret in secrets_of(oauth):
        assert secret not in caplog.text


def secrets_of(oauth):
    issued = ["access-Token-{0}".format(n) for n in range(1, 6)] + \
        ["refresh-Rotated-{0}".format(n) for n in range(1, 6)]
    initial_responses = [xoauth2.xoauth2_initial_response(SMTP_USER, token) for token in issued]
    return [CLIENT_SECRET, REFRESH_TOKEN, SMTP_PASSWORD] + issued + initial_responses


# --- what the server offers, who logs in ----------------------------------------------------------------------
def test_server_without_auth_is_a_clear_error(oauth):
    with SmtpTestServer() as smtp:
        with pytest.raises(DeliveryError, match="does not offer AUTH; check smtp_ssl_mode"):
            send(mailer(oauth, smtp))
    assert oauth.token_requests == []


def test_server_without_xoauth2_is_a_clear_error(oauth):
    with SmtpTestServer(auth=True) as smtp:
        with pytest.raises(DeliveryError, match="offers AUTH LOGIN PLAIN but not XOAUTH2"):
            send(mailer(oauth, smtp))
        assert smtp.messages == []
    assert oauth.token_requests == []


def test_login_is_the_address_of_from_email_address_without_smtp_user(oauth, smtp):
    send(mailer(oauth, smtp, smtp_user="", from_email_address="Mailer Bot <{0}>".format(SMTP_USER)))
    assert smtp.handler.xoauth2_attempts == [(SMTP_USER, "access-Token-1", True)]
    assert smtp.messages[0].auth_user == SMTP_USER


def test_initial_response_format():
    raw = base64.b64decode(xoauth2.xoauth2_initial_response("a@example.com", "tok"))
    assert raw == b"user=a@example.com\x01auth=Bearer tok\x01\x01"


# --- selftest ------------------------------------------------------------------------------------------------
def test_selftest_with_xoauth2_sends_nothing(oauth, smtp):
    assert selftest_function(section(oauth, smtp.port)) == {"state": "success"}
    assert tokens_tried(smtp) == [("access-Token-1", True)]
    assert smtp.messages == []


def test_selftest_reports_token_endpoint_error(oauth, smtp):
    oauth.error = (400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    result = selftest_function(section(oauth, smtp.port))
    assert result["state"] == "failure"
    assert "invalid_grant: Token has been expired or revoked." in result["reason"]
    assert "outbound-email oauth2-token" in result["reason"]
    assert smtp.handler.xoauth2_attempts == []


def test_selftest_reports_unreachable_token_endpoint(oauth, smtp):
    result = selftest_function(section(oauth, smtp.port, token_url="http://127.0.0.1:{0}/t".format(free_port())))
    assert result["state"] == "failure" and "Cannot connect to the OAuth2 token endpoint" in result["reason"]


# --- send_email2 end to end -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_servers():
    with FakeOAuth2Server(port=APP_OAUTH_PORT) as oauth_server:
        with SmtpTestServer(xoauth2=oauth_server.accepts, port=APP_SMTP_PORT) as smtp_server:
            yield oauth_server, smtp_server


class TestSendEmail2WithOAuth2:

    def test_oauth2_wins_over_the_password_and_one_token_serves_two_calls(self, circuits_app, app_servers, caplog):
        oauth, smtp = app_servers
        with caplog.at_level(logging.DEBUG):
            results = [call_function(circuits_app, "send_email2", {
                "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com", "mail_subject": subject,
                "mail_body": "Body"}) for subject in ("one", "two")]
        assert [result["success"] for result in results] == [True, True], results
        assert [m.message["Subject"] for m in smtp.messages] == ["one", "two"]
        assert tokens_tried(smtp) == [("access-Token-1", True), ("access-Token-1", True)]
        assert len(oauth.token_requests) == 1
        assert "OAuth2 is used and the password ignored" in caplog.text
        for secret in secrets_of(oauth):
            assert secret not in caplog.text
            assert secret not in str(results)


# --- outbound-email oauth2-token: the test plays the browser ----------------------------------------------
class OutputStream:
    """A thread-safe stdout/stderr stand-in the test can read while the command still runs."""

    def __init__(self):
        self._parts = []
        self._lock = threading.Lock()

    def write(self, text):
        with self._lock:
            self._parts.append(text)
        return len(text)

    def flush(self):
        pass

    @property
    def text(self):
        with self._lock:
            return "".join(self._parts)


class CommandRun:
    """``outbound-email`` run in a thread, in this process."""

    def __init__(self, argv, monkeypatch):
        self.out, self.err = OutputStream(), OutputStream()
        monkeypatch.setattr(sys, "stdout", self.out)
        monkeypatch.setattr(sys, "stderr", self.err)
        self.exit_code = None
        self._thread = threading.Thread(target=self._run, args=(argv,))
        self._thread.start()

    def _run(self, argv):
        self.exit_code = main(argv)

    def line_starting_with(self, prefix, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.out.text.splitlines():
                if line.startswith(prefix):
                    return line
            assert self._thread.is_alive(), self.err.text
            time.sleep(0.01)
        raise AssertionError("no line starting with {0!r} in {1!r}".format(prefix, self.out.text))

    def finish(self):
        self._thread.join(15)
        assert not self._thread.is_alive()
        return self.exit_code


def browser_visit(url):
    """What the browser does: open the sign-in URL, follow the provider's redirect to the callback."""
    with requests.Session() as browser:
        browser.trust_env = False       # no proxy between the browser and localhost
        return browser.get(url, timeout=10)


@pytest.fixture
def no_default_app_config(monkeypatch, tmp_path):
    monkeypatch.setenv("APP_CONFIG_FILE", str(tmp_path / "absent.app.config"))


def token_command(oauth, *extra):
    return ["oauth2-token", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--auth-url", oauth.auth_url,
            "--token-url", oauth.token_url, "--scope", SCOPE, "--no-browser", "--timeout", "10"] + list(extra)


def sign_in(oauth, monkeypatch, argv):
    """Run the command, play the browser; (exit code, stdout, stderr, page)."""
    command = CommandRun(argv, monkeypatch)
    page = browser_visit(command.line_starting_with(oauth.auth_url))
    code = command.finish()
    return code, command.out.text, command.err.text, page


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_prints_the_refresh_token(oauth, monkeypatch):
    code, out, err, page = sign_in(oauth, monkeypatch, token_command(oauth, "--prompt", "consent"))
    assert code == 0, err
    assert "refresh_token = refresh-From-Code-2\n" in out
    assert page.status_code == 200 and "<h1>Success</h1>" in page.text and "refresh-From-Code" not in page.text
    asked = oauth.authorize_requests[0]
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID and asked["scope"] == SCOPE
    assert asked["redirect_uri"].startswith("http://localhost:") and len(asked["state"]) >= 32
    assert asked["code_challenge_method"] == "S256" and asked["prompt"] == "consent"
    exchange = oauth.token_requests[0]      # the fake server also checked the PKCE verifier
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "code-1"
    assert exchange["redirect_uri"] == asked["redirect_uri"] and exchange["client_secret"] == CLIENT_SECRET
    # the printed token is what the app then uses
    settings = load_settings(section(oauth, 25, refresh_token="refresh-From-Code-2"))
    assert OAuth2TokenProvider(settings.oauth2).access_token().value == "access-Token-3"


def test_oauth2_token_reads_the_default_app_config(oauth, monkeypatch, tmp_path):
    config = tmp_path / "app.config"
    config.write_text("[resilient]\nhost = soar.example.invalid\norg = Org\napi_key_id = a\napi_key_secret = b\n\n"
                      "[fn_outbound_email]\nclient_id = {0}\nclient_secret = $TEST_OAUTH_SECRET\nscope = {1}\n"
                      "auth_url = {2}\ntoken_url = {3}\n".format(CLIENT_ID, SCOPE, oauth.auth_url, oauth.token_url))
    monkeypatch.setenv("APP_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEST_OAUTH_SECRET", CLIENT_SECRET)          # secrets resolve as resilient-circuits does
    code, out, err, _ = sign_in(oauth, monkeypatch, ["oauth2-token", "--no-browser", "--timeout", "10"])
    assert code == 0, err
    assert "refresh_token = refresh-From-Code-2" in out
    assert oauth.authorize_requests[0]["scope"] == SCOPE and "prompt" not in oauth.authorize_requests[0]


@pytest.mark.usefixtures("no_default_app_config")
@pytest.mark.parametrize("case, message", [
    ("denied", "The sign-in was denied (access_denied: The user declined the consent)"),
    ("token_error", "The code exchange failed: The OAuth2 token endpoint"),
    ("no_refresh_token", "issued an access token but no refresh_token: ask for offline access"),
])
def test_oauth2_token_failures_exit_nonzero_with_the_reason(oauth, monkeypatch, case, message):
    if case == "denied":
        oauth.deny_consent = True
    elif case == "no_refresh_token":
        oauth.refresh_token_for_code = False
    else:
        oauth.error = (400, {"error": "invalid_request", "error_description": "AADSTS9002313: Invalid request."})
    code, out, err, page = sign_in(oauth, monkeypatch, token_command(oauth))
    assert code == 1
    assert message in err
    if case == "token_error":
        assert "invalid_request: AADSTS9002313: Invalid request." in err
    elif case != "no_refresh_token":
        assert oauth.token_requests == []           # nothing exchanged
    assert page.status_code == 400 and "<h1>Failed</h1>" in page.text
    assert "refresh_token =" not in out


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_ignores_a_forged_callback_and_completes_the_real_sign_in(oauth, monkeypatch):
    command = CommandRun(token_command(oauth), monkeypatch)
    sign_in_url = command.line_starting_with(oauth.auth_url)
    oauth.state_override = "forged-state"       # an attacker's link: a code of theirs, not our state
    forged = browser_visit(sign_in_url)
    assert forged.status_code == 400 and "<h1>Failed</h1>" in forged.text
    assert "state does not match the one this command sent" in forged.text and "still waiting" in forged.text
    assert oauth.token_requests == []                           # the forged code was not exchanged
    oauth.state_override = None
    page = browser_visit(sign_in_url)                           # the administrator's own sign-in still works
    assert command.finish() == 0, command.err.text
    assert page.status_code == 200 and "<h1>Success</h1>" in page.text
    assert "refresh_token = refresh-From-Code-" in command.out.text
    assert [form["code"] for form in oauth.token_requests] == ["code-2"]
    assert "ignored a callback with a wrong state" in command.err.text


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_ignores_a_callback_with_a_non_ascii_state(oauth, monkeypatch):
    command = CommandRun(token_command(oauth), monkeypatch)
    sign_in_url = command.line_starting_with(oauth.auth_url)
    oauth.state_override = "Zustand-\u00df\u2603"
    forged = browser_visit(sign_in_url)
    assert forged.status_code == 400 and "state does not match the one this command sent" in forged.text
    oauth.state_override = None
    page = browser_visit(sign_in_url)
    assert command.finish() == 0, command.err.text
    assert page.status_code == 200 and "Traceback" not in command.err.text


def callback_port(sign_in_url):
    redirect_uri = dict(parse_qsl(urlsplit(sign_in_url).query))["redirect_uri"]
    return urlsplit(redirect_uri).port


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_a_silent_local_connection_does_not_hold_up_the_browser(oauth, monkeypatch):
    from fn_outbound_email.cli import oauth2_token
    monkeypatch.setattr(oauth2_token, "CALLBACK_REQUEST_TIMEOUT", 0.5 * SLOWNESS)
    command = CommandRun(token_command(oauth), monkeypatch)
    sign_in_url = command.line_starting_with(oauth.auth_url)
    with socket.create_connection(("127.0.0.1", callback_port(sign_in_url)), timeout=10 * SLOWNESS) as silent:
        page = browser_visit(sign_in_url)                # answered while the silent connection is still open
        assert page.status_code == 200 and "<h1>Success</h1>" in page.text
        assert command.finish() == 0, command.err.text
        assert silent.recv(1) == b""                     # the server dropped it at its request timeout


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_with_only_forged_callbacks_times_out_and_says_so(oauth, monkeypatch):
    argv = token_command(oauth)
    argv[-1] = "1"
    command = CommandRun(argv, monkeypatch)
    sign_in_url = command.line_starting_with(oauth.auth_url)
    oauth.state_override = "forged-state"
    pages = [browser_visit(sign_in_url) for _ in range(2)]
    assert [page.status_code for page in pages] == [400, 400]
    assert command.finish() == 1
    assert "within 1 s (2 callback(s) with a wrong state were ignored" in command.err.text
    assert oauth.token_requests == [] and "refresh_token =" not in command.out.text


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_gives_up_when_the_browser_does_not_come_back(oauth, monkeypatch):
    argv = token_command(oauth)
    argv[-1] = "0.2"
    command = CommandRun(argv, monkeypatch)
    assert command.finish() == 1
    assert "No answer reached http://localhost:" in command.err.text and "within 0.2 s" in command.err.text


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_names_missing_settings(monkeypatch):
    command = CommandRun(["oauth2-token", "--client-id", CLIENT_ID, "--no-browser"], monkeypatch)
    assert command.finish() == 1
    assert "Missing auth_url, token_url: give --auth-url ... --token-url ..." in command.err.text


@pytest.mark.usefixtures("no_default_app_config")
def test_oauth2_token_redirect_uri_must_be_local(oauth, monkeypatch):
    command = CommandRun(token_command(oauth, "--redirect-uri", "https://app.example.com/callback"), monkeypatch)
    assert command.finish() == 1
    assert "--redirect-uri must be http://localhost:PORT/" in command.err.text
