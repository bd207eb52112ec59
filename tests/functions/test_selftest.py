# -*- coding: utf-8 -*-
"""Selftest connects as sending does, sends nothing, and explains every failure without raising."""

import socket

import pytest

from fn_outbound_email.util.selftest import selftest_function
from tests.support import config_section
from tests.support.fault_smtp import FaultSmtpServer, ScriptedSocketServer
from tests.support.pki import TlsPki
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, free_port


@pytest.fixture(scope="module")
def tls(tls_pki):
    """The session's test PKI (conftest tls_pki): its CA file and the server context for localhost."""
    return {"ca": tls_pki.ca_file, "context": tls_pki.context}


def opts(port, **settings):
    return config_section.section(port, **dict({"smtp_conn_timeout": 3}, **settings))


def test_success_with_starttls_and_auth_sends_nothing(tls):
    with SmtpTestServer(tls_context=tls["context"], require_starttls=True, auth=True) as server:
        result = selftest_function(opts(server.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"],
                                        smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD))
        assert result == {"state": "success"}
        assert server.messages == []


def test_success_plain():
    with SmtpTestServer() as server:
        assert selftest_function(opts(server.port)) == {"state": "success"}
        assert server.messages == []


@pytest.mark.parametrize("case, expected", [
    ("unresolvable", "cannot be resolved"),
    ("refused", "refused the connection"),
    ("untrusted", "not trusted"),
    ("no_starttls", "does not offer STARTTLS"),
    ("no_auth", "does not offer AUTH"),
    ("bad_password", "refused the login"),
    ("no_server_setting", "smtp_server is required"),
    ("bad_port", "smtp_port"),
])
def test_failures_name_the_cause(tls, case, expected):
    if case == "unresolvable":
        result = selftest_function(opts(25, smtp_server="no-such-host.invalid"))
    elif case == "refused":
        result = selftest_function(opts(free_port()))
    elif case == "no_server_setting":
        result = selftest_function({"fn_outbound_email": {}})
    elif case == "bad_port":
        result = selftest_function(opts("not-a-port"))
    else:
        server_kwargs = {"untrusted": {"tls_context": tls["context"]}, "no_starttls": {}, "no_auth": {},
                         "bad_password": {"tls_context": tls["context"], "auth": True}}[case]
        section = {"untrusted": {"smtp_ssl_mode": "starttls"},
                   "no_starttls": {"smtp_ssl_mode": "starttls"},
                   "no_auth": {"smtp_user": SMTP_USER, "smtp_password": SMTP_PASSWORD,
                               "smtp_allow_plaintext_auth": "true"},
                   "bad_password": {"smtp_ssl_mode": "starttls", "smtp_ssl_cafile": tls["ca"],
                                    "smtp_user": SMTP_USER, "smtp_password": "wrong"}}[case]
        with SmtpTestServer(**server_kwargs) as server:
            result = selftest_function(opts(server.port, **section))
            assert server.messages == []
    assert result["state"] == "failure"
    assert expected in result["reason"]


def test_never_raises_on_nonsense_config():
    for nonsense in ({}, {"fn_outbound_email": None}, {"fn_outbound_email": {"smtp_server": "h", "smtp_port": "0"}},
                     {"fn_outbound_email": {"smtp_server": "h", "client_id": "x"}}):
        result = selftest_function(nonsense)
        assert result["state"] == "failure" and result["reason"]


# --- the hints of a send, in selftest ----------------------------------------------------------------------------
def test_password_without_starttls_is_refused_before_auth():
    with FaultSmtpServer(auth=True) as server:
        result = selftest_function(opts(server.port, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD))
        assert not any(command.startswith("AUTH") for command in server.commands)
        assert server.commands[-1] == "QUIT"
    assert result["state"] == "failure" and "smtp_allow_plaintext_auth = true" in result["reason"]


def test_password_with_ssl_mode_none_is_sent_inside_starttls(tls_pki):
    with FaultSmtpServer(auth=True, tls_context=tls_pki.context) as server:
        result = selftest_function(opts(server.port, smtp_ssl_cafile=tls_pki.ca_file, smtp_user=SMTP_USER,
                                        smtp_password=SMTP_PASSWORD))
        assert result == {"state": "success"}
        assert server.commands[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH PLAIN"]


def test_plain_smtp_against_an_implicit_tls_port(tls_pki):
    with SmtpTestServer(implicit_tls_context=tls_pki.context) as server:
        result = selftest_function(opts(server.port, smtp_conn_timeout="1"))
    assert result["state"] == "failure" and "smtp_ssl_mode = ssl" in result["reason"]


def test_ssl_mode_against_a_plain_server():
    with SmtpTestServer() as server:
        result = selftest_function(opts(server.port, smtp_ssl_mode="ssl"))
    assert result["state"] == "failure" and "smtp_ssl_mode = starttls" in result["reason"]


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_selftest_refuses_a_certificate_for_another_name_naming_its_names(tls_pki, mode):
    kwargs = {"implicit_tls_context": tls_pki.other_name_context} if mode == "ssl" else \
        {"tls_context": tls_pki.other_name_context}
    with SmtpTestServer(**kwargs) as server:
        result = selftest_function(opts(server.port, smtp_ssl_mode=mode, smtp_ssl_cafile=tls_pki.ca_file))
    assert result["state"] == "failure"
    assert "issued for {0}, not for '127.0.0.1'".format(TlsPki.OTHER_NAME) in result["reason"]
    assert "smtp_ssl_cafile" not in result["reason"]


def test_connection_refused_on_port_25_in_ssl_mode():
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 25)) == 0:
            pytest.skip("something listens on 127.0.0.1:25")
    result = selftest_function(opts(25, smtp_ssl_mode="ssl"))
    assert result["state"] == "failure" and "set smtp_port = 465" in result["reason"]


def test_a_tls_record_answering_plain_ehlo():
    alert = b"\x15\x03\x01\x00\x02\x02\x46"          # TLS alert record: protocol_version
    with ScriptedSocketServer(answer=lambda line: [alert]) as server:
        result = selftest_function(opts(server.port))
    assert result["state"] == "failure"
    assert "answered in TLS" in result["reason"] and "smtp_ssl_mode = ssl" in result["reason"]
