# -*- coding: utf-8 -*-
"""Delivery over plain SMTP, STARTTLS and implicit TLS, with AUTH, against real aiosmtpd servers."""

import base64
import dataclasses
import logging
import os
import socket
import threading

import pytest

from fn_outbound_email.lib.delivery import base as delivery_base
from fn_outbound_email.lib.delivery.smtp import session as smtp_session
from fn_outbound_email.lib.delivery.smtp import transaction as smtp_transaction
from fn_outbound_email.lib.delivery.smtp.transport import SmtpTransport
from fn_outbound_email.lib.errors import ConfigurationError, DeliveryError
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.message.addresses import parse_address
from fn_outbound_email.lib.settings import load_settings
from tests.support import config_section
from tests.support.fault_smtp import FaultSmtpServer, ScriptedSocketServer, WireTap
from tests.support.oauth2_server import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeOAuth2Server
from tests.support.pki import TlsPki
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, free_port


@pytest.fixture(scope="module")
def tls_files(tls_pki):
    """The session's test PKI (conftest tls_pki): its CA file and the server context for localhost."""
    return {"ca": tls_pki.ca_file, "context": tls_pki.context}


def server_context(tls_files):
    return tls_files["context"]


def mailer(port, **config):
    # a session per send, as these tests count them; pooled sessions are tested in tests/delivery/test_pipelining.py
    config = dict({"from_email_address": "soar@example.com", "smtp_conn_timeout": 3, "smtp_connection_reuse": False},
                  **config)
    return config_section.mailer(port, **config)


def send(mailer_instance, to="alice@example.com"):
    return mailer_instance.send(MailRequest(incident_id=1, to=to, subject="TLS test", body="hello"))


def test_starttls_with_auth_delivers_encrypted_and_authenticated(tls_files):
    with SmtpTestServer(tls_context=server_context(tls_files), require_starttls=True, auth=True) as server:
        outcome = send(mailer(server.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls_files["ca"],
                              smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD))
        assert outcome.accepted == ["alice@example.com"]
        assert len(server.messages) == 1
        assert server.messages[0].tls is True
        assert server.messages[0].auth_user == SMTP_USER


def test_implicit_tls_delivers(tls_files):
    with SmtpTestServer(implicit_tls_context=server_context(tls_files)) as server:
        send(mailer(server.port, smtp_ssl_mode="ssl", smtp_ssl_cafile=tls_files["ca"]))
        assert len(server.messages) == 1 and server.messages[0].tls is True


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_untrusted_certificate_is_refused_by_default(tls_files, mode):
    kwargs = {"tls_context": server_context(tls_files)} if mode == "starttls" else \
        {"implicit_tls_context": server_context(tls_files)}
    with SmtpTestServer(**kwargs) as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode=mode))     # smtp_ssl_cafile unset: system CA store
        assert "not trusted" in str(raised.value) and "smtp_ssl_cafile" in str(raised.value)
        assert server.messages == []


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_ca_file_without_a_certificate_is_a_clear_error(tls_files, tmp_path, mode):
    not_a_bundle = tmp_path / "ca.pem"
    not_a_bundle.write_text("this is not a PEM certificate\n")
    kwargs = {"tls_context": server_context(tls_files)} if mode == "starttls" else \
        {"implicit_tls_context": server_context(tls_files)}
    with SmtpTestServer(**kwargs) as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode=mode, smtp_ssl_cafile=str(not_a_bundle)))
        assert "holds no CA certificate" in str(raised.value) and str(not_a_bundle) in str(raised.value)
        assert raised.value.transient is False
        assert server.messages == []


def test_verification_off_only_when_the_admin_says_false(tls_files, caplog):
    caplog.set_level(logging.WARNING)
    with SmtpTestServer(tls_context=server_context(tls_files)) as server:
        send(mailer(server.port, smtp_ssl_mode="starttls", smtp_ssl_cafile="false"))
        assert len(server.messages) == 1 and server.messages[0].tls
    assert "NOT verified" in caplog.text


def test_wrong_password_is_refused_with_the_server_reply(tls_files, caplog):
    caplog.set_level(logging.DEBUG)
    with SmtpTestServer(tls_context=server_context(tls_files), auth=True) as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls_files["ca"],
                        smtp_user=SMTP_USER, smtp_password="wrong-password-123"))
        assert "refused the login" in str(raised.value) and "535" in str(raised.value)
        assert raised.value.transient is False
        assert server.messages == []
    assert "wrong-password-123" not in caplog.text


def test_auth_not_offered_is_explained():
    with SmtpTestServer() as server:      # no AUTH advertised
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD,
                        smtp_allow_plaintext_auth="true"))
        assert "does not offer AUTH" in str(raised.value)
        assert server.messages == []


def test_starttls_not_offered_is_explained():
    with SmtpTestServer() as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode="starttls"))
        assert "does not offer STARTTLS" in str(raised.value)


def test_the_ehlo_name_is_looked_up_once_per_process(monkeypatch):
    expected = smtp_session.ehlo_name()
    lookups = []
    monkeypatch.setattr(socket, "getfqdn", lambda *args: lookups.append(args) or "looked-up.example")
    with SmtpTestServer() as server:
        send(mailer(server.port))
        send(mailer(server.port))
        assert [message.ehlo_name for message in server.messages] == [expected, expected]
    assert lookups == [], "smtplib looked the host name up again for a connection"


def test_server_down_is_refused_connection(monkeypatch):
    monkeypatch.setattr(delivery_base, "BACKOFF_SECONDS", 0)
    port = free_port()
    with pytest.raises(DeliveryError) as raised:
        send(mailer(port, smtp_retries="1"))
    assert "refused the connection" in str(raised.value) and str(port) in str(raised.value)


def test_silent_server_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(listener.getsockname()[1], smtp_conn_timeout="1"))
        assert "Timed out after 1 s" in str(raised.value)
    finally:
        for connection, _ in accepted:
            connection.close()
        listener.close()


def test_unresolvable_server_name():
    with pytest.raises(DeliveryError) as raised:
        send(mailer(25).__class__(load_settings({"fn_outbound_email": {
            "smtp_server": "no-such-host.invalid", "smtp_conn_timeout": "3", "smtp_retries": "0",
            "from_email_address": "soar@example.com"}}), soar=None))
    assert "cannot be resolved" in str(raised.value)


@pytest.mark.parametrize("section, expected", [
    ({}, "smtp_server is required"),
    ({"smtp_server": "h", "smtp_ssl_mode": "tls13"}, "smtp_ssl_mode"),
    ({"smtp_server": "h", "smtp_ssl_cafile": "/no/such/ca.pem"}, "smtp_ssl_cafile"),
    ({"smtp_server": "h", "smtp_port": "abc"}, "smtp_port"),
    ({"smtp_server": "h", "smtp_user": "u@example.com"}, "smtp_password"),
])
def test_bad_configuration_names_the_key(section, expected):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"fn_outbound_email": section})
    assert expected in str(raised.value)


def test_default_ports_follow_the_tls_mode():
    ports = {mode: load_settings({"fn_outbound_email": {"smtp_server": "h", "smtp_ssl_mode": mode}}).smtp_port
             for mode in ("None", "starttls", "ssl")}
    assert ports == {"None": 25, "starttls": 587, "ssl": 465}


def test_settings_repr_hides_secrets():
    settings = load_settings({"fn_outbound_email": {"smtp_server": "h", "smtp_user": "u", "smtp_password": "pw-123",
                                                    "client_id": "c", "client_secret": "cs-456",
                                                    "token_url": "https://t", "refresh_token": "rt-789"}})
    text = repr(settings)
    assert "pw-123" not in text and "cs-456" not in text and "rt-789" not in text


class _RecordingSmtp:
    def __init__(self):
        self.writes = []

    def send(self, data):
        self.writes.append(bytes(data))


@pytest.mark.parametrize("message, writes", [
    (b"", [b"\r\n.\r\n"]),
    (b"one line\r\n", [b"one line\r\n.\r\n"]),                     # a small message and its dot: one write
    (b"no line end", [b"no line end\r\n.\r\n"]),
    (b".starts with a dot\r\n.\r\n", [b"..starts with a dot\r\n..\r\n.\r\n"]),
])
def test_message_data_is_dot_stuffed_and_terminated(message, writes):
    smtp = _RecordingSmtp()
    smtp_transaction.MailTransaction._send_data(smtp, message)
    assert smtp.writes == writes


def test_a_big_message_goes_in_line_aligned_chunks_the_last_with_the_dot():
    line = b".a line of the message, some starting with a dot\r\n"
    message = line * (3 * smtp_transaction.DATA_CHUNK_BYTES // len(line))
    smtp = _RecordingSmtp()
    smtp_transaction.MailTransaction._send_data(smtp, message)
    assert len(smtp.writes) == 3
    assert all(write.endswith(b"\r\n") and write.startswith(b"..") for write in smtp.writes)
    assert b"".join(smtp.writes) == message.replace(b"\r\n.", b"\r\n..").replace(b".a", b"..a", 1) + b".\r\n"


def test_a_message_over_a_mebibyte_arrives_intact():
    data = os.urandom(3 * smtp_transaction.DATA_CHUNK_BYTES // 2)
    headers = compose.OuterHeaders(sender=parse_address("soar@example.com", "mail_from"),
                                   to=[parse_address("alice@example.com", "mail_to")], subject="big")
    message = compose.assemble(headers, compose.build_content(".dot line\n" * 1000,
                                                              [compose.Attachment("big.bin", data)]))
    with SmtpTestServer() as server:
        transport = SmtpTransport(load_settings({"fn_outbound_email": {
            "smtp_server": "127.0.0.1", "smtp_port": str(server.port), "from_email_address": "soar@example.com"}}))
        transport.deliver("soar@example.com", ["alice@example.com"], message)
        received = server.messages[0].message
    assert received.get_body().get_content() == ".dot line\n" * 1000
    assert [part.get_payload(decode=True) for part in received.iter_attachments()] == [data]


# --- credentials only over TLS ------------------------------------------------------------------------------
def secret_forms(user=SMTP_USER, password=SMTP_PASSWORD):
    """The password as AUTH PLAIN and AUTH LOGIN carry it, and in clear."""
    return [password.encode(), base64.b64encode("\0{0}\0{1}".format(user, password).encode()),
            base64.b64encode(password.encode())]


def test_password_with_ssl_mode_none_goes_only_inside_starttls(tls_pki, caplog):
    caplog.set_level(logging.INFO)
    with SmtpTestServer(tls_context=tls_pki.context, auth=True) as server, WireTap(server.port) as tap:
        send(mailer(tap.port, smtp_ssl_mode="None", smtp_ssl_cafile=tls_pki.ca_file, smtp_user=SMTP_USER,
                    smtp_password=SMTP_PASSWORD))
        assert server.messages[0].tls is True and server.messages[0].auth_user == SMTP_USER
    wire = bytes(tap.from_client)
    assert b"STARTTLS" in wire
    assert b"AUTH" not in wire and not any(form in wire for form in secret_forms())
    assert "upgrading the connection" in caplog.text


def test_password_is_refused_before_auth_when_starttls_is_not_offered(caplog):
    with FaultSmtpServer(auth=True) as server, WireTap(server.port) as tap:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(tap.port, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD))
        assert not any(command.startswith("AUTH") for command in server.commands)
        assert server.commands[-1] == "QUIT" and server.messages == []
    reason = str(raised.value)
    assert "does not offer STARTTLS" in reason and "in clear" in reason
    assert "smtp_ssl_mode = ssl" in reason and "smtp_allow_plaintext_auth = true" in reason
    assert not raised.value.transient
    wire = bytes(tap.from_client)
    assert b"AUTH" not in wire and not any(form in wire for form in secret_forms())


def test_plaintext_auth_only_when_allowed_and_warned_for_every_connection(caplog):
    caplog.set_level(logging.WARNING)
    with SmtpTestServer(auth=True) as server:
        sender = mailer(server.port, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD, smtp_allow_plaintext_auth="true")
        send(sender)
        send(sender)
        assert [message.auth_user for message in server.messages] == [SMTP_USER, SMTP_USER]
    warnings = [record for record in caplog.records if "cross the network in clear" in record.getMessage()]
    assert len(warnings) == 2
    assert SMTP_PASSWORD not in caplog.text


def test_plaintext_auth_setting_is_off_by_default():
    assert load_settings({"fn_outbound_email": {"smtp_server": "h"}}).allow_plaintext_auth is False
    assert load_settings({"fn_outbound_email": {"smtp_server": "h", "smtp_allow_plaintext_auth": "true"}}
                         ).allow_plaintext_auth is True


def oauth2_mailer(oauth, port, **values):
    section = {"smtp_server": "127.0.0.1", "smtp_port": str(port), "smtp_conn_timeout": "3", "smtp_retries": "0",
               "smtp_user": SMTP_USER, "from_email_address": "soar@example.com", "client_id": CLIENT_ID,
               "client_secret": CLIENT_SECRET, "token_url": oauth.token_url, "refresh_token": REFRESH_TOKEN}
    section.update(values)
    return Mailer(load_settings({"fn_outbound_email": section}), soar=None)


def test_oauth2_token_with_ssl_mode_none_goes_only_inside_starttls(tls_pki, monkeypatch):
    from fn_outbound_email.lib.auth import oauth2
    monkeypatch.setattr(oauth2, "_caches", {})
    with FakeOAuth2Server() as oauth:
        with SmtpTestServer(xoauth2=oauth.accepts, tls_context=tls_pki.context) as server, \
                WireTap(server.port) as tap:
            send(oauth2_mailer(oauth, tap.port, smtp_ssl_cafile=tls_pki.ca_file))
            assert server.messages[0].tls is True and server.messages[0].auth_user == SMTP_USER
    wire = bytes(tap.from_client)
    assert b"STARTTLS" in wire and b"AUTH" not in wire and b"Bearer" not in wire


def test_oauth2_is_refused_before_any_token_request_when_starttls_is_not_offered(monkeypatch):
    from fn_outbound_email.lib.auth import oauth2
    monkeypatch.setattr(oauth2, "_caches", {})
    with FakeOAuth2Server() as oauth:
        with SmtpTestServer(xoauth2=oauth.accepts) as server:
            with pytest.raises(DeliveryError, match="does not offer STARTTLS, so the credentials would cross"):
                send(oauth2_mailer(oauth, server.port))
            assert server.handler.xoauth2_attempts == [] and server.messages == []
        assert oauth.token_requests == []


# --- SMTPUTF8 --------------------------------------------------------------------------------------------------
INTERNATIONAL = "josé@example.com"
UTF8_MESSAGE = "From: soar@example.com\r\nTo: {0}\r\nSubject: Grüße\r\n\r\nDas Paket ist da.\r\n".format(
    INTERNATIONAL).encode("utf-8")


def plain_transport(port):
    return SmtpTransport(load_settings({"fn_outbound_email": {
        "smtp_server": "127.0.0.1", "smtp_port": str(port), "smtp_retries": "0", "smtp_conn_timeout": "3"}}))


def test_smtputf8_message_uses_the_smtputf8_option_when_offered():
    with SmtpTestServer() as server:
        report = plain_transport(server.port).deliver("soar@example.com", [INTERNATIONAL, "bob@example.com"],
                                                      UTF8_MESSAGE, smtputf8=True)
        assert report.accepted == [INTERNATIONAL, "bob@example.com"]
        received = server.messages[0]
        assert received.rcpt_tos == [INTERNATIONAL, "bob@example.com"] and received.data == UTF8_MESSAGE
        assert "SMTPUTF8" in received.mail_options and "BODY=8BITMIME" in received.mail_options


def test_smtputf8_message_is_refused_naming_the_address_when_not_offered():
    with FaultSmtpServer(smtputf8=False) as server:
        with pytest.raises(DeliveryError) as raised:
            plain_transport(server.port).deliver("soar@example.com", [INTERNATIONAL, "bob@example.com"],
                                                 UTF8_MESSAGE, smtputf8=True)
        assert "does not offer SMTPUTF8" in str(raised.value) and INTERNATIONAL in str(raised.value)
        assert "bob@example.com" not in str(raised.value)
        assert not raised.value.transient
        assert "MAIL" not in server.commands and server.commands[-1] == "QUIT" and server.received == []


def test_ascii_message_needs_no_smtputf8():
    with SmtpTestServer() as server:
        plain_transport(server.port).deliver("soar@example.com", ["bob@example.com"], b"Subject: x\r\n\r\nhi\r\n")
        assert "SMTPUTF8" not in server.messages[0].mail_options


# --- SIZE ----------------------------------------------------------------------------------------------------
def test_message_over_the_ehlo_size_is_refused_before_mail_from_naming_both_sizes():
    with FaultSmtpServer(data_size_limit=300) as server:
        sender = mailer(server.port)
        prepared = sender.prepare(MailRequest(incident_id=1, to="alice@example.com", subject="big", body="x" * 400))
        with pytest.raises(DeliveryError) as raised:
            sender.deliver(prepared)
        assert "MAIL" not in server.commands and server.commands[-1] == "QUIT"
    reason = str(raised.value)
    assert "The message is {0} bytes, more than the 300 bytes".format(len(prepared.message)) in reason
    assert "EHLO SIZE" in reason and "refused the sender" not in reason
    assert not raised.value.transient


# --- error hints that name the right fix ------------------------------------------------------------------------
def quick(mailer_instance, timeout=0.3):
    """The mailer with a timeout below app.config's floor of 1 s (the tests wait for it to pass)."""
    return Mailer(dataclasses.replace(mailer_instance._settings, timeout=timeout), soar=None)


def test_plain_smtp_against_an_implicit_tls_port_suggests_ssl_mode(tls_pki):
    with SmtpTestServer(implicit_tls_context=tls_pki.context) as server:
        with pytest.raises(DeliveryError) as raised:
            send(quick(mailer(server.port)))
        assert server.messages == []
    assert "waiting for the greeting" in str(raised.value) and "smtp_ssl_mode = ssl" in str(raised.value)


def test_a_tls_record_answering_plain_ehlo_suggests_ssl_mode():
    alert = b"\x15\x03\x01\x00\x02\x02\x46"          # TLS alert record: protocol_version
    with ScriptedSocketServer(answer=lambda line: [alert]) as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port))
    assert "answered in TLS" in str(raised.value) and "smtp_ssl_mode = ssl" in str(raised.value)
    assert not raised.value.transient


def test_ssl_mode_against_a_plain_server_suggests_starttls_or_none():
    with SmtpTestServer() as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode="ssl"))
        assert server.messages == []
    assert "answered the TLS handshake in plain text" in str(raised.value)
    assert "smtp_ssl_mode = starttls" in str(raised.value) and "None" in str(raised.value)


@pytest.mark.parametrize("mode", ["starttls", "ssl", "None"])
def test_certificate_for_another_name_is_refused_naming_its_names(tls_pki, mode):
    """Host-name checking guard: the certificate is from the trusted CA, only its name is wrong."""
    kwargs = {"implicit_tls_context": tls_pki.other_name_context} if mode == "ssl" else \
        {"tls_context": tls_pki.other_name_context, "auth": True}
    with SmtpTestServer(**kwargs) as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode=mode, smtp_ssl_cafile=tls_pki.ca_file, smtp_user=SMTP_USER,
                        smtp_password=SMTP_PASSWORD))
        assert server.messages == []
    reason = str(raised.value)
    assert "issued for {0}, not for '127.0.0.1'".format(TlsPki.OTHER_NAME) in reason
    assert "set smtp_server to that name" in reason and "smtp_ssl_cafile" not in reason


def nothing_listens_on(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(not nothing_listens_on(25), reason="something listens on 127.0.0.1:25")
def test_connection_refused_on_port_25_in_ssl_mode_suggests_port_465():
    with pytest.raises(DeliveryError) as raised:
        send(mailer(25, smtp_ssl_mode="ssl"))
    assert "refused the connection" in str(raised.value) and "set smtp_port = 465" in str(raised.value)


def test_connection_refused_on_another_port_has_no_port_hint():
    with pytest.raises(DeliveryError) as raised:
        send(mailer(free_port(), smtp_ssl_mode="ssl"))
    assert "refused the connection" in str(raised.value) and "smtp_port =" not in str(raised.value)
