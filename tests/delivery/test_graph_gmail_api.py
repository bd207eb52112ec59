# -*- coding: utf-8 -*-
"""transport = graph | gmail_api: the composed message through Microsoft Graph sendMail and the Gmail API.

Real parts: the test token endpoint (tests/oauth2_server.py) issues the app-only tokens, and local HTTPS
stand-ins of both APIs (tests/support/mail_api_servers.py, the session's test PKI) check the token, path,
headers and body, and record what the provider would deliver. S/MIME is checked with the openssl command line.
"""

import email
import email.policy
import logging
import re
import shutil
import types

import pytest
from resilient_lib import RequestsCommon

from fn_outbound_email.lib.delivery import base, http_api
from fn_outbound_email.lib.delivery.gmail_api import GMAIL_JSON_MAX_BYTES, GMAIL_MAX_MESSAGE_BYTES
from fn_outbound_email.lib.delivery.graph import GRAPH_MAX_REQUEST_BYTES
from fn_outbound_email.lib.errors import ConfigurationError, DeliveryError, MailError
from fn_outbound_email.lib.mailer import Mailer, MailRequest, build_transport
from fn_outbound_email.lib.settings import SECTION, load_settings
from fn_outbound_email.util.selftest import selftest_function
from tests.message.test_smime import P12_PASSWORD, decrypt, verify, write_bytes
from tests.support import config_section
from tests.support.forward_proxy import ForwardProxy
from tests.support.mail_api_apps import HTTP_TRANSPORTS, MAILBOX, MailApiSetup
from tests.support.mail_api_servers import DROP
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID

TRANSPORTS = pytest.mark.parametrize("transport", HTTP_TRANSPORTS)


@pytest.fixture
def api(request, tls_pki, tmp_path):
    with MailApiSetup(request.param, tls_pki, tmp_path) as setup:
        yield setup


def each_transport(test):
    return pytest.mark.parametrize("api", HTTP_TRANSPORTS, indirect=True)(test)


@pytest.fixture
def sleeps(monkeypatch):
    """The waits between tries, recorded instead of slept."""
    waited = []
    monkeypatch.setattr(base, "time", types.SimpleNamespace(sleep=waited.append))
    return waited


def send(mailer, **fields):
    values = dict(incident_id=INCIDENT_ID, to="alice@example.com", subject="Over HTTP", body="Sent over an API")
    values.update(fields)
    return mailer.send(MailRequest(**values))


def body_of(request_record):
    return request_record[3]


# --- what the provider receives ---------------------------------------------------------------------------
@each_transport
def test_headers_recipients_and_results_as_over_smtp_and_bcc_only_for_the_provider(api):
    outcome = send(api.mailer(), to='"Doe, Jane" <jane@example.com>; bob@example.com',
                   cc="Jörg Müller <joerg@example.com>, BOB@example.com", bcc="hidden@example.net, jane@example.com",
                   subject="Grüße – ✓ status", message_id="abc.123@soar.example",
                   in_reply_to="<orig.1@mail.example>", importance="high")
    assert len(api.server.messages) == 1
    received = api.server.messages[0]
    assert received.rcpt_tos == ["jane@example.com", "bob@example.com", "joerg@example.com", "hidden@example.net"]
    assert outcome.accepted == received.rcpt_tos and outcome.refused == {}
    assert b"hidden@example.net" not in received.data and b"bcc" not in received.data.lower().split(b"\r\n\r\n")[0]
    message = received.message
    assert message["Subject"] == "Grüße – ✓ status"
    assert message["Message-ID"] == "<abc.123@soar.example>" == outcome.message_id
    assert message["In-Reply-To"] == "<orig.1@mail.example>"
    assert message["Importance"] == "high"
    assert message["From"] == "SOAR Notifier <soar@example.com>"
    assert (outcome.signed, outcome.encrypted) == (False, False)
    # the request itself: the mailbox's path, the provider's Content-Type, the bearer token of the token endpoint
    method, path, headers, _ = api.server.requests[0]
    assert method == "POST" and MAILBOX in path
    assert headers["Authorization"].split()[1] in api.oauth.valid_access_tokens
    assert headers["Content-Type"] == ("text/plain" if api.transport == "graph" else "application/json")


@each_transport
def test_signed_and_encrypted_mail_verifies_with_openssl(api, tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("needs the openssl command line")
    from tests.message.test_smime import Pki
    certs = Pki()
    bundle = write_bytes(tmp_path / "sender.p12", certs.bundle())
    ca = write_bytes(tmp_path / "ca.pem", certs.root.cert_pem)
    bob_cert, bob_key = write_bytes(tmp_path / "bob.pem", certs.bob.cert_pem), \
        write_bytes(tmp_path / "bob.key", certs.bob.key_pem)
    mailer = api.mailer(p12_signing_encrypting_cert=bundle, p12_signing_encrypting_cert_password=P12_PASSWORD)
    signed = send(mailer, body="Signed over the API")
    encrypted = send(mailer, body="Sealed over the API", bcc="audit@example.com",
                     encryption_recipients=certs.bob.cert_pem.decode())
    assert (signed.signed, signed.encrypted, encrypted.signed, encrypted.encrypted) == (True, False, True, True)
    first, second = api.server.messages
    assert b"Signed over the API" in verify(write_bytes(tmp_path / "1.eml", first.data), ca, str(tmp_path / "1.txt"))
    assert second.rcpt_tos == ["alice@example.com", "audit@example.com"] and b"audit@" not in second.data
    decrypt(write_bytes(tmp_path / "2.eml", second.data), bob_cert, bob_key, str(tmp_path / "inner.eml"))
    assert b"Sealed over the API" in verify(str(tmp_path / "inner.eml"), ca, str(tmp_path / "2.txt"))


@pytest.mark.parametrize("api", ["gmail_api"], indirect=True)
def test_gmail_large_message_goes_to_the_media_upload_endpoint_intact(api):
    outcome = send(api.mailer(), body="line of text\n" * (GMAIL_JSON_MAX_BYTES // 10))
    _, path, headers, body = api.server.requests[0]
    assert path.startswith("/upload/gmail/v1/users/{0}/messages/send?uploadType=media".format(MAILBOX))
    assert headers["Content-Type"] == "message/rfc822"
    received = api.server.messages[0]
    assert received.data == body and received.message.get_content() == "line of text\n" * (GMAIL_JSON_MAX_BYTES // 10)
    assert outcome.accepted == ["alice@example.com"]


# --- sizes: refused before anything is sent, or the provider's 413 -------------------------------------------
@pytest.mark.parametrize("api", ["graph"], indirect=True)
def test_graph_message_over_the_request_limit_is_refused_before_sending_naming_both_sizes(api):
    with pytest.raises(MailError) as failure:
        send(api.mailer(), body=("y" * 76 + "\n") * (GRAPH_MAX_REQUEST_BYTES // 100))
    reason = str(failure.value)
    assert str(GRAPH_MAX_REQUEST_BYTES) in reason and "bytes base64-encoded), more than" in reason
    assert "nothing was sent" in reason
    assert api.server.requests == [] and api.server.messages == []


@pytest.mark.parametrize("api", ["gmail_api"], indirect=True)
def test_gmail_message_over_35_mb_is_refused_before_sending(api):
    transport = build_transport(load_settings(api.opts()))
    message = b"To: alice@example.com\r\n\r\n" + b"x" * GMAIL_MAX_MESSAGE_BYTES
    with pytest.raises(MailError) as failure:
        transport.deliver(MAILBOX, ["alice@example.com"], message)
    assert "The message is {0} bytes, more than the {1} bytes".format(len(message), GMAIL_MAX_MESSAGE_BYTES) in \
        str(failure.value)
    assert api.server.requests == []


@each_transport
def test_413_names_the_size(api):
    if api.transport == "graph":
        api.server.max_request_bytes = 100
    else:
        api.server.faults.append((413, {}, {"error": {"code": 413, "message": "Request Entity Too Large"}}))
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer())
    assert "HTTP 413" in str(failure.value)
    assert re.search(r"the message of \d+ bytes (\(\d+ bytes base64-encoded\) )?is more than", str(failure.value))
    assert not failure.value.transient and api.server.messages == []


# --- busy, token, permission, lost answers --------------------------------------------------------------------
@each_transport
@pytest.mark.parametrize("status", [429, 503])
def test_busy_answer_is_retried_after_retry_after_within_smtp_retries(api, sleeps, status):
    api.server.faults.append((status, {"Retry-After": "7"}, {"error": {"code": "TooManyRequests", "message": "Slow"}}))
    outcome = send(api.mailer(smtp_retries=1))
    assert sleeps == [7.0]
    assert outcome.accepted == ["alice@example.com"] and len(api.server.messages) == 1
    assert len(api.server.requests) == 2


@each_transport
def test_busy_answer_past_smtp_retries_fails_as_transient_naming_the_wait(api, sleeps):
    api.server.faults.extend([(429, {"Retry-After": "3"}, None)] * 2)
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer(smtp_retries=1))
    assert failure.value.transient and "HTTP 429" in str(failure.value) and "wait 3 s" in str(failure.value)
    assert sleeps == [3.0] and api.server.messages == []


@each_transport
def test_a_retry_after_past_a_minute_is_not_waited_for(api, sleeps):
    api.server.faults.append((503, {"Retry-After": "3600"}, None))
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer(smtp_retries=2))
    assert "HTTP 503" in str(failure.value) and "wait 3600 s" in str(failure.value)
    assert sleeps == [] and len(api.server.requests) == 1


@each_transport
def test_a_revoked_token_gets_one_new_token(api):
    mailer = api.mailer()
    send(mailer, subject="first")
    api.oauth.revoke_access_tokens()
    send(mailer, subject="second")
    assert [m.message["Subject"] for m in api.server.messages] == ["first", "second"]
    assert len(api.oauth.token_requests) == 2
    assert [r[2]["Authorization"] for r in api.server.requests][1] != api.server.requests[2][2]["Authorization"]


@each_transport
def test_a_second_401_is_not_retried_again(api):
    mailer = api.mailer()
    send(mailer, subject="first")
    refused = (401, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed"}})
    api.server.faults.extend([refused, refused])
    with pytest.raises(DeliveryError) as failure:
        send(mailer, subject="second")
    assert "HTTP 401" in str(failure.value) and "new token was refused too" in str(failure.value)
    assert len(api.server.requests) == 3 and len(api.oauth.token_requests) == 2


@pytest.mark.parametrize("api", ["graph"], indirect=True)
@pytest.mark.parametrize("case", ["no Mail.Send", "access policy"])
def test_graph_403_names_the_permission_and_the_access_policy(api, case):
    if case == "no Mail.Send":
        api.oauth.roles = ["Mail.Read"]
    else:
        api.server.allowed_mailboxes = {"other@example.com"}
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer())
    reason = str(failure.value)
    assert "HTTP 403 (ErrorAccessDenied" in reason and "Mail.Send" in reason
    assert "New-ApplicationAccessPolicy" in reason and MAILBOX in reason
    assert not failure.value.transient and api.server.messages == []


@pytest.mark.parametrize("api", ["gmail_api"], indirect=True)
def test_gmail_403_names_the_scope_and_domain_wide_delegation(api):
    readonly = "https://www.googleapis.com/auth/gmail.readonly"
    api.oauth.delegations[next(iter(api.oauth.delegations))].add((MAILBOX, readonly))
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer(scope=readonly))
    reason = str(failure.value)
    assert "HTTP 403" in reason and "insufficient authentication scopes" in reason
    assert "gmail.send" in reason and "domain-wide delegation" in reason


@each_transport
def test_a_dropped_connection_after_the_request_is_uncertain_and_not_resent(api):
    api.server.faults.append(DROP)
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer(smtp_retries=2))
    assert failure.value.uncertain and "uncertain" in str(failure.value) and "not sent again" in str(failure.value)
    assert len(api.server.requests) == 1


@each_transport
def test_a_gateway_timeout_is_uncertain_and_not_resent(api):
    api.server.faults.append((504, {}, None))
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer(smtp_retries=2))
    assert failure.value.uncertain and len(api.server.requests) == 1


@each_transport
def test_an_api_that_is_down_is_transient_nothing_sent_and_retried(api, sleeps):
    closed = "https://127.0.0.1:{0}".format(free_port())
    api.oauth.graph_resources.append(closed)
    key = "graph_url" if api.transport == "graph" else "gmail_api_url"
    with pytest.raises(DeliveryError) as failure:
        send(api.mailer(smtp_retries=1, **{key: closed}))
    assert failure.value.transient and not failure.value.uncertain and "nothing was sent" in str(failure.value)
    assert len(sleeps) == 1


@each_transport
def test_an_untrusted_certificate_is_refused_naming_verify(api):
    opts = api.opts()
    del opts[SECTION]["verify"]
    mailer = Mailer(load_settings(opts), soar=None, requests_common=RequestsCommon(opts, opts[SECTION]))
    with pytest.raises(DeliveryError) as failure:
        send(mailer)
    assert "TLS with" in str(failure.value) and "verify" in str(failure.value)
    assert api.server.messages == []


@each_transport
def test_no_token_or_secret_in_logs_or_results(api, caplog):
    with caplog.at_level(logging.DEBUG):
        outcome = send(api.mailer())
    tokens = [headers["Authorization"].split()[1] for _, _, headers, _ in api.server.requests]
    for secret in tokens + [api.values.get("client_secret") or "no-secret-here"]:
        assert secret not in caplog.text and secret not in str(outcome)


# --- selftest ----------------------------------------------------------------------------------------------
@each_transport
def test_selftest_proves_token_and_permission_without_sending(api):
    assert selftest_function(api.opts()) == {"state": "success"}
    assert api.server.messages == [] and len(api.server.requests) == 1
    assert len(api.oauth.token_requests) == 1


@each_transport
def test_selftest_fails_naming_the_missing_permission(api):
    if api.transport == "graph":
        api.oauth.roles = []
    else:
        api.oauth.delegations[next(iter(api.oauth.delegations))].clear()
    result = selftest_function(api.opts())
    assert result["state"] == "failure"
    assert ("Mail.Send" if api.transport == "graph" else "domain-wide delegation") in result["reason"]
    assert api.server.messages == []


# --- app.config -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("values, expected", [
    ({"transport": "exchange"}, "transport = 'exchange' is not one of smtp, graph, gmail_api"),
    ({"transport": "graph"}, "transport = graph signs in with oauth2_grant = client_credentials, not none"),
    ({"transport": "gmail_api", "oauth2_grant": "client_credentials", "client_id": "c", "client_secret": "s",
      "token_url": "https://login.example/token", "oauth2_subject": MAILBOX},
     "transport = gmail_api signs in with oauth2_grant = jwt_bearer, not client_credentials"),
    ({"transport": "graph", "graph_url": "http://graph.example.com", "oauth2_grant": "client_credentials",
      "client_id": "c", "client_secret": "s", "token_url": "https://login.example/token", "oauth2_subject": MAILBOX},
     "graph_url = 'http://graph.example.com' is not an https URL"),
])
def test_a_transport_configuration_that_cannot_work_names_the_key(values, expected):
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config_section.section(25, **values))
    assert expected in str(failure.value)


def test_graph_needs_no_smtp_server_and_its_token_scope_follows_graph_url():
    opts = {SECTION: {"transport": "graph", "graph_url": "https://graph.microsoft.us/", "oauth2_grant":
                      "client_credentials", "client_id": "c", "client_secret": "s", "oauth2_subject": MAILBOX,
                      "token_url": "https://login.microsoftonline.us/tenant/oauth2/v2.0/token"}}
    settings = load_settings(opts)
    assert settings.graph_url == "https://graph.microsoft.us"
    assert settings.oauth2.scope == "https://graph.microsoft.us/.default"
    assert settings.default_sender == MAILBOX


def test_smtp_stays_the_default_transport():
    assert load_settings(config_section.section(25)).transport == "smtp"


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
def test_the_api_and_the_token_endpoint_are_reached_through_the_proxy_of_app_config(transport, tls_pki, tmp_path):
    """The API has a name (its certificate's), which only the proxy resolves: the mail can only go through it."""
    with ForwardProxy() as proxy, MailApiSetup(transport, tls_pki, tmp_path,
                                               tls_context=tls_pki.other_name_context) as api:
        url = "https://{0}:{1}".format(tls_pki.OTHER_NAME, api.server.port)
        if transport == "graph":
            api.server.serve_as(url)
        opts = api.opts(**{"graph_url" if transport == "graph" else "gmail_api_url": url})
        opts["integrations"] = {"https_proxy": proxy.url, "http_proxy": proxy.url}
        mailer = Mailer(load_settings(opts), soar=None, requests_common=RequestsCommon(opts, opts[SECTION]))
        outcome = send(mailer)
    assert outcome.accepted == ["alice@example.com"] and len(api.server.messages) == 1
    assert "CONNECT {0}:{1}".format(tls_pki.OTHER_NAME, api.server.port) in proxy.targets
    assert "POST {0}".format(api.oauth.token_url) in proxy.targets


def test_the_proxy_comes_from_app_config_as_requests_common_reads_it():
    opts = {SECTION: {"transport": "graph", "oauth2_grant": "client_credentials", "client_id": "c",
                      "client_secret": "s", "oauth2_subject": MAILBOX, "token_url": "https://login.example/token"},
            "integrations": {"https_proxy": "http://proxy.example:3128", "http_proxy": "http://proxy.example:3128"}}
    transport = build_transport(load_settings(opts), RequestsCommon(opts, opts[SECTION]))
    assert transport._proxies == {"https": "http://proxy.example:3128", "http": "http://proxy.example:3128"}


def test_bcc_recipients_are_the_envelope_recipients_missing_from_to_and_cc():
    message = b'To: "A, B" <a@example.com>\r\nCc: c@example.com\r\nSubject: x\r\n\r\nTo: body@example.com\r\n'
    assert http_api.bcc_recipients(message, ["a@example.com", "C@example.com", "d@example.com",
                                                  "body@example.com"]) == ["d@example.com", "body@example.com"]
    added = http_api.with_bcc_header(message, ["a@example.com", "d@example.com"])
    assert added.startswith(b"Bcc: d@example.com\r\n") and added.endswith(message)
    parsed = email.message_from_bytes(added, policy=email.policy.default)
    assert parsed["Bcc"] == "d@example.com"
