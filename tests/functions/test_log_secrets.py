# -*- coding: utf-8 -*-
"""No secret reaches the app's log, whatever ran before: password AUTH, S/MIME p12 and OAuth2 paths.

The records are read by tests/support/app_log.py's handler on the app's own loggers, before resilient-circuits'
RedactingFilter (on its handlers for the whole session) can rewrite them, so the result does not depend on
test order. Everything logs at DEBUG. Sends go through send_email2 with pytest-resilient-circuits, over
STARTTLS to real aiosmtpd servers.
"""

import base64

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from fn_outbound_email.lib.auth import oauth2, xoauth2
from fn_outbound_email.lib.errors import DeliveryError, SmimeError
from fn_outbound_email.lib.mailer import MailRequest
from tests.support import config_section
from tests.support import pki
from tests.support.function_runner import app_config, call_function
from tests.support.oauth2_server import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeOAuth2Server
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

SMTP_PORT = free_port()
OAUTH_SMTP_PORT = free_port()
P12_PASSWORD = "p12-Log-Secret-77"
config_data = ""            # written by the module fixture below, before circuits_app reads it
resilient_mock = SoarMock


@pytest.fixture(scope="module")
def tls(tls_pki, tmp_path_factory):
    """The session's test PKI (conftest tls_pki), and a password-protected p12 of a sender it issued."""
    sender = pki.issue_cert(tls_pki.ca, "SOAR Notifier", email="soar@example.com")
    p12 = tmp_path_factory.mktemp("log_secrets") / "sender.p12"
    p12.write_bytes(pki.p12_bytes(sender, None, P12_PASSWORD.encode()))
    return {"ca": tls_pki.ca_file, "context": tls_pki.context, "p12": str(p12)}


@pytest.fixture(scope="module")
def password_app(tls):
    """app.config: STARTTLS, password AUTH, S/MIME signing with a password-protected p12."""
    global config_data
    config_data = app_config(SMTP_PORT, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"], smtp_user=SMTP_USER,
                             smtp_password=SMTP_PASSWORD, from_email_address="soar@example.com",
                             p12_signing_encrypting_cert=tls["p12"],
                             p12_signing_encrypting_cert_password=P12_PASSWORD)
    with SmtpTestServer(port=SMTP_PORT, tls_context=tls["context"], require_starttls=True, auth=True) as server:
        yield server
    config_data = ""


def assert_clean(app_log, secrets):
    assert app_log.unformattable == []
    assert app_log.lines, "the app logged nothing, so this check proves nothing"
    for secret in secrets:
        assert secret not in app_log.text


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.usefixtures("password_app")      # listed first, so app.config is written before circuits_app
class TestPasswordAndP12:

    def test_signed_send_with_password_auth_logs_no_secret(self, circuits_app, password_app, app_log):
        password_app.messages.clear()
        result = call_function(circuits_app, "send_email2", {
            "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com", "mail_subject": "Logged",
            "mail_body": "Body"})
        assert result["success"] is True, result["reason"]
        assert result["content"]["signed"] is True
        assert password_app.messages[0].auth_user == SMTP_USER and password_app.messages[0].tls
        assert any(line.startswith("Sent ") for line in app_log.lines), app_log.lines
        # the password in clear, as AUTH PLAIN / LOGIN carry it, and the p12 password
        assert_clean(app_log, [SMTP_PASSWORD, b64(SMTP_PASSWORD), b64("\0{0}\0{1}".format(SMTP_USER, SMTP_PASSWORD)),
                               P12_PASSWORD])
        assert SMTP_PASSWORD not in str(result) and P12_PASSWORD not in str(result)

    def test_refused_login_logs_no_password(self, password_app, tls, app_log):
        wrong = "Wrong-Passw0rd-in-log?"
        mailer = config_section.mailer(SMTP_PORT, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"],
                                       smtp_user=SMTP_USER, smtp_password=wrong, from_email_address="soar@example.com")
        with pytest.raises(DeliveryError) as raised:
            mailer.send(MailRequest(incident_id=1, to="alice@example.com", body="x"))
        assert wrong not in str(raised.value)
        app_log.lines.append("(refused: {0})".format(raised.value))   # the reason counts as logged output
        assert_clean(app_log, [wrong, b64(wrong), b64("\0{0}\0{1}".format(SMTP_USER, wrong))])

    def test_wrong_p12_password_logs_no_password(self, password_app, tls, app_log):
        wrong = "Not-The-P12-Passw0rd"
        mailer = config_section.mailer(SMTP_PORT, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"],
                                       from_email_address="soar@example.com", p12_signing_encrypting_cert=tls["p12"],
                                       p12_signing_encrypting_cert_password=wrong)
        with pytest.raises(SmimeError, match="p12_signing_encrypting_cert") as raised:
            mailer.send(MailRequest(incident_id=1, to="alice@example.com", body="x"))
        assert wrong not in str(raised.value)
        app_log.lines.append("(refused: {0})".format(raised.value))   # the reason counts as logged output
        assert_clean(app_log, [wrong, P12_PASSWORD])


@pytest.fixture
def oauth_servers(tls, monkeypatch):
    monkeypatch.setattr(oauth2, "_caches", {})
    with FakeOAuth2Server() as token_server:
        with SmtpTestServer(port=OAUTH_SMTP_PORT, tls_context=tls["context"], require_starttls=True,
                            xoauth2=token_server.accepts) as smtp:
            yield token_server, smtp


def test_oauth2_send_logs_no_secret_or_token(oauth_servers, tls, app_log):
    token_server, smtp = oauth_servers
    mailer = config_section.mailer(OAUTH_SMTP_PORT, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"],
                                   smtp_user=SMTP_USER, from_email_address="soar@example.com", client_id=CLIENT_ID,
                                   client_secret=CLIENT_SECRET, token_url=token_server.token_url,
                                   refresh_token=REFRESH_TOKEN, scope="mail")
    outcome = mailer.send(MailRequest(incident_id=1, to="alice@example.com", body="x"))
    assert outcome.accepted == ["alice@example.com"]
    tokens = sorted(token_server.valid_access_tokens)
    assert len(tokens) == 1 and smtp.handler.xoauth2_attempts[0][1] == tokens[0]
    assert_clean(app_log, [CLIENT_SECRET, REFRESH_TOKEN, tokens[0],
                           xoauth2.xoauth2_initial_response(SMTP_USER, tokens[0])])


# --- a server that echoes the AUTH line in its refusal ---------------------------------------------------------

class EchoingAuth(SMTP):
    """Refuses every AUTH with a reply that repeats the line the client sent (some servers do)."""

    async def smtp_AUTH(self, arg):
        await self.push("535 5.7.8 Authentication failed: AUTH {0}".format(arg or ""))


class EchoingAuthController(Controller):
    def factory(self):
        return EchoingAuth(self.handler, **self.SMTP_kwargs)


class EchoingAuthServer(SmtpTestServer):
    controller_class = EchoingAuthController


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_server_echoing_the_auth_line_does_not_put_the_password_in_the_reason(mechanism):
    password = "Echoed-Passw0rd!"
    with EchoingAuthServer(auth=True, exclude_auth=[m for m in ("PLAIN", "LOGIN") if m != mechanism]) as server:
        mailer = config_section.mailer(server.port, smtp_user=SMTP_USER, smtp_password=password,
                                       smtp_allow_plaintext_auth=True, from_email_address="soar@example.com")
        with pytest.raises(DeliveryError) as raised:
            mailer.send(MailRequest(incident_id=1, to="alice@example.com", body="x"))
    reason = str(raised.value)
    assert reason.startswith("The SMTP server refused the login of user '{0}' (AUTH {1}): 535 5.7.8 Authentication "
                             "failed: AUTH {1}".format(SMTP_USER, mechanism)), reason
    for secret in (password, b64(password), b64("\0{0}\0{1}".format(SMTP_USER, password))):
        assert secret not in reason


def test_a_server_echoing_the_xoauth2_line_does_not_put_the_token_in_the_reason(monkeypatch):
    monkeypatch.setattr(oauth2, "_caches", {})
    with FakeOAuth2Server() as token_server, EchoingAuthServer(xoauth2=token_server.accepts) as server:
        mailer = config_section.mailer(server.port, smtp_user=SMTP_USER, from_email_address="soar@example.com",
                                       smtp_allow_plaintext_auth=True, client_id=CLIENT_ID,
                                       client_secret=CLIENT_SECRET, token_url=token_server.token_url,
                                       refresh_token=REFRESH_TOKEN, scope="mail")
        with pytest.raises(DeliveryError) as raised:
            mailer.send(MailRequest(incident_id=1, to="alice@example.com", body="x"))
        tokens = sorted(token_server.valid_access_tokens)
    reason = str(raised.value)
    assert "535 5.7.8 Authentication failed: AUTH XOAUTH2 [redacted]" in reason, reason
    assert tokens and all(token not in reason and xoauth2.xoauth2_initial_response(SMTP_USER, token) not in reason
                          for token in tokens)
