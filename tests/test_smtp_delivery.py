# -*- coding: utf-8 -*-
"""Delivery over plain SMTP, STARTTLS and implicit TLS, with AUTH, against real aiosmtpd servers."""

import logging
import os
import socket
import ssl
import threading

import pytest

from fn_outbound_email.lib import compose, smtp_transport
from fn_outbound_email.lib.addresses import parse_address
from fn_outbound_email.lib.errors import ConfigurationError, DeliveryError
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from tests import pki
from tests.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, free_port


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca = pki.make_ca()
    server = pki.tls_server_identity(ca)
    return {"ca": pki.write_pem(folder / "ca.pem", ca.cert_pem),
            "cert": pki.write_pem(folder / "server.pem", server.cert_pem),
            "key": pki.write_pem(folder / "server.key", server.key_pem)}


def server_context(tls_files):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    return context


def mailer(port, **config):
    section = {"smtp_server": "127.0.0.1", "smtp_port": str(port), "from_email_address": "soar@example.com",
               "smtp_conn_timeout": "3", "smtp_retries": "0"}
    section.update({key: str(value) for key, value in config.items()})
    return Mailer(load_settings({"fn_outbound_email": section}), soar=None)


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
            send(mailer(server.port, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD))
        assert "does not offer AUTH" in str(raised.value)
        assert server.messages == []


def test_starttls_not_offered_is_explained():
    with SmtpTestServer() as server:
        with pytest.raises(DeliveryError) as raised:
            send(mailer(server.port, smtp_ssl_mode="starttls"))
        assert "does not offer STARTTLS" in str(raised.value)


def test_the_ehlo_name_is_looked_up_once_per_process(monkeypatch):
    expected = smtp_transport.ehlo_name()
    lookups = []
    monkeypatch.setattr(socket, "getfqdn", lambda *args: lookups.append(args) or "looked-up.example")
    with SmtpTestServer() as server:
        send(mailer(server.port))
        send(mailer(server.port))
        assert [message.ehlo_name for message in server.messages] == [expected, expected]
    assert lookups == [], "smtplib looked the host name up again for a connection"


def test_server_down_is_refused_connection(monkeypatch):
    monkeypatch.setattr(smtp_transport, "BACKOFF_SECONDS", 0)
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
    smtp_transport.SmtpTransport._send_data(smtp, message)
    assert smtp.writes == writes


def test_a_big_message_goes_in_line_aligned_chunks_the_last_with_the_dot():
    line = b".a line of the message, some starting with a dot\r\n"
    message = line * (3 * smtp_transport.DATA_CHUNK_BYTES // len(line))
    smtp = _RecordingSmtp()
    smtp_transport.SmtpTransport._send_data(smtp, message)
    assert len(smtp.writes) == 3
    assert all(write.endswith(b"\r\n") and write.startswith(b"..") for write in smtp.writes)
    assert b"".join(smtp.writes) == message.replace(b"\r\n.", b"\r\n..").replace(b".a", b"..a", 1) + b".\r\n"


def test_a_message_over_a_mebibyte_arrives_intact():
    data = os.urandom(3 * smtp_transport.DATA_CHUNK_BYTES // 2)
    headers = compose.OuterHeaders(sender=parse_address("soar@example.com", "mail_from"),
                                   to=[parse_address("alice@example.com", "mail_to")], subject="big")
    message = compose.assemble(headers, compose.build_content(".dot line\n" * 1000,
                                                              [compose.Attachment("big.bin", data)]))
    with SmtpTestServer() as server:
        transport = smtp_transport.SmtpTransport(load_settings({"fn_outbound_email": {
            "smtp_server": "127.0.0.1", "smtp_port": str(server.port), "from_email_address": "soar@example.com"}}))
        transport.deliver("soar@example.com", ["alice@example.com"], message)
        received = server.messages[0].message
    assert received.get_body().get_content() == ".dot line\n" * 1000
    assert [part.get_payload(decode=True) for part in received.iter_attachments()] == [data]
