# -*- coding: utf-8 -*-
"""Failure handling against a misbehaving SMTP server (tests/support/fault_smtp.py).

For each fault: the reason names the cause; the server holds the message exactly once or not at all
(never half a message, never two copies); transient faults recover within smtp_retries, permanent ones
fail at once, and a connection lost after the message data was sent is reported as uncertain and not
retried.
"""

import dataclasses
import os
import time

import pytest

from fn_outbound_email.lib.delivery import base as delivery_base
from fn_outbound_email.lib.delivery.smtp import session as smtp_session
from fn_outbound_email.lib.errors import DeliveryError, MailError
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from tests.support import config_section
from tests.support.fault_smtp import Fault, FaultSmtpServer, ScriptedSocketServer, WireTap
from tests.support.function_runner import app_config, call_function
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

# A whole session on loopback has to fit in CLIENT_TIMEOUT: generous for a shared 2-core machine, and
# TEST_SLOWNESS (default 1) scales every wait here for a slower one. Stalls last twice the timeout.
SLOWNESS = float(os.environ.get("TEST_SLOWNESS", "1"))
CLIENT_TIMEOUT = 1.0 * SLOWNESS
STALL = 2 * CLIENT_TIMEOUT
BACKOFF = 0.5                # the patched constant; sleeps are recorded, not slept
BODY = "first line\n.a line that starts with a dot\n..and two\nlast line"


class RecordingClock:
    """The ``time`` module as lib/delivery/base.py (the retry loop) sees it, with ``sleep`` recorded instead of slept."""

    def __init__(self):
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def backoff_sleeps(monkeypatch):
    """Retries' backoff delays (only the retry loop's sleeps; other threads keep the real clock)."""
    clock = RecordingClock()
    monkeypatch.setattr(delivery_base, "BACKOFF_SECONDS", BACKOFF)
    monkeypatch.setattr(delivery_base, "time", clock)
    return clock.sleeps


@pytest.fixture(scope="module")
def fault_server():
    with FaultSmtpServer() as server:
        yield server


@pytest.fixture
def server(fault_server, backoff_sleeps):
    fault_server.script()
    return fault_server


def make_mailer(server, retries=2, timeout=CLIENT_TIMEOUT, **config):
    # a session per send (what these tests count); pooled sessions are tested in tests/delivery/test_pipelining.py
    config = dict({"from_email_address": "soar@example.com", "smtp_retries": retries, "smtp_connection_reuse": False},
                  **config)
    # smtp_conn_timeout has a floor of 1 s in app.config; the tests want shorter waits
    settings = dataclasses.replace(load_settings(config_section.section(server.port, **config)), timeout=timeout)
    return Mailer(settings, soar=None)


def prepare(mailer, to="alice@example.com"):
    return mailer.prepare(MailRequest(incident_id=1, to=to, subject="Fault test", body=BODY))


def deliver(server, to="alice@example.com", **options):
    """(PreparedMail, SendOutcome) of one send through the Mailer."""
    mailer = make_mailer(server, **options)
    prepared = prepare(mailer, to)
    return prepared, mailer.deliver(prepared)


def failed_delivery(server, to="alice@example.com", **options):
    """(PreparedMail, DeliveryError) of a send that must fail."""
    mailer = make_mailer(server, **options)
    prepared = prepare(mailer, to)
    with pytest.raises(DeliveryError) as raised:
        mailer.deliver(prepared)
    return prepared, raised.value


def assert_whole_copies(server, prepared, received, accepted):
    """The server got ``received`` complete copies of the message and accepted ``accepted`` of them."""
    assert len(server.received) == received
    assert all(data == prepared.message for data in server.received)      # complete, dots unstuffed
    assert len(server.messages) == accepted


# --- transient faults recover within smtp_retries ------------------------------------------------------

def test_421_at_greeting_then_ok_recovers(server, backoff_sleeps):
    server.script(greeting=Fault("421 4.3.2 Service not available, try later", times=1))
    prepared, outcome = deliver(server, retries=2)
    assert outcome.accepted == ["alice@example.com"]
    assert server.connections == 2
    assert backoff_sleeps == [BACKOFF]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_421_at_greeting_every_time_fails_after_the_retries_naming_the_reply(server, backoff_sleeps):
    server.script(greeting=Fault("421 4.3.2 Too busy", times=None))
    prepared, error = failed_delivery(server, retries=2)
    assert "greeted with 421 4.3.2 Too busy" in str(error)
    assert error.transient and not error.uncertain
    assert server.connections == 3                          # the first try and two retries
    assert backoff_sleeps == [BACKOFF, 2 * BACKOFF]         # exponential backoff
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_connection_dropped_at_greeting_then_ok_recovers(server, backoff_sleeps):
    server.script(greeting=Fault(drop=True, times=1))
    prepared, outcome = deliver(server, retries=1)
    assert outcome.accepted == ["alice@example.com"]
    assert server.connections == 2
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_421_at_mail_then_ok_recovers(server, backoff_sleeps):
    server.script(mail=Fault("421 4.7.0 Try again later, closing connection", times=1))
    prepared, outcome = deliver(server, retries=2)
    assert outcome.accepted == ["alice@example.com"]
    assert server.connections == 2 and backoff_sleeps == [BACKOFF]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_421_at_mail_every_time_names_the_reply(server, backoff_sleeps):
    server.script(mail=Fault("421 4.7.0 Try again later, closing connection", times=None))
    prepared, error = failed_delivery(server, retries=1)
    assert "refused the sender soar@example.com: 421 4.7.0 Try again later" in str(error)
    assert error.transient
    assert server.connections == 2
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_421_at_rcpt_then_ok_recovers(server, backoff_sleeps):
    server.script(rcpt=Fault("421 4.3.2 System shutting down", times=1))
    prepared, outcome = deliver(server, to="alice@example.com, bob@example.com", retries=1)
    assert outcome.accepted == ["alice@example.com", "bob@example.com"] and outcome.refused == {}
    assert server.connections == 2 and backoff_sleeps == [BACKOFF]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_421_at_rcpt_every_time_names_the_reply(server, backoff_sleeps):
    server.script(rcpt=Fault("421 4.3.2 System shutting down", times=None))
    prepared, error = failed_delivery(server, retries=1)
    assert "closing the connection: 421 4.3.2 System shutting down" in str(error) and error.transient
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_451_at_data_once_then_ok_sends_one_accepted_copy(server, backoff_sleeps):
    server.script(data=Fault("451 4.3.0 Local error in processing", times=1))
    prepared, outcome = deliver(server, retries=2)
    assert outcome.accepted == ["alice@example.com"]
    # the 451 refused the first copy outright, so sending again cannot duplicate it
    assert_whole_copies(server, prepared, received=2, accepted=1)
    assert backoff_sleeps == [BACKOFF]


def test_451_at_data_beyond_the_retries_fails_naming_the_reply(server, backoff_sleeps):
    server.script(data=Fault("451 4.3.0 Local error in processing", times=None))
    prepared, error = failed_delivery(server, retries=1)
    assert "did not accept the message: 451 4.3.0 Local error in processing" in str(error)
    assert_whole_copies(server, prepared, received=2, accepted=0)


def test_greeting_stall_times_out_and_is_retried(server, backoff_sleeps):
    server.script(greeting=Fault(stall=STALL, reply="220 finally", times=1))
    prepared, outcome = deliver(server, retries=1)
    assert outcome.accepted == ["alice@example.com"]
    assert server.connections == 2 and backoff_sleeps == [BACKOFF]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_stall_at_mail_past_the_timeout_names_the_timeout(server, backoff_sleeps):
    server.script(mail=Fault(stall=STALL, reply="250 OK", times=None))
    prepared, error = failed_delivery(server, retries=0)
    assert "Timed out after {0:g} s".format(CLIENT_TIMEOUT) in str(error) and "smtp_conn_timeout" in str(error)
    assert "waiting for the answer to MAIL FROM" in str(error)        # the step it hung on
    assert error.transient and not error.uncertain
    assert_whole_copies(server, prepared, received=0, accepted=0)


# --- permanent faults fail at once -------------------------------------------------------------------------

def test_552_at_data_fails_at_once(server, backoff_sleeps):
    server.script(data=Fault("552 5.3.4 Message size exceeds fixed limit", times=None))
    prepared, error = failed_delivery(server, retries=2)
    assert "did not accept the message: 552 5.3.4 Message size exceeds fixed limit" in str(error)
    assert not error.transient and error.smtp_code == 552
    assert server.connections == 1 and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=1, accepted=0)


def test_5xx_sender_refusal_fails_at_once(server, backoff_sleeps):
    server.script(mail=Fault("553 5.7.1 Sender address rejected: not owned by user", times=None))
    prepared, error = failed_delivery(server, retries=2)
    assert "refused the sender soar@example.com: 553 5.7.1 Sender address rejected" in str(error)
    assert not error.transient
    assert server.connections == 1 and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_550_for_one_recipient_delivers_to_the_others_and_reports_it(server, backoff_sleeps):
    server.script(refuse=["gone@example.org"])
    prepared, outcome = deliver(server, to="alice@example.com, gone@example.org, bob@example.com")
    assert outcome.accepted == ["alice@example.com", "bob@example.com"]
    assert outcome.refused == {"gone@example.org": "550 5.1.1 <gone@example.org>: mailbox unavailable"}
    assert server.messages[0].rcpt_tos == ["alice@example.com", "bob@example.com"]
    assert_whole_copies(server, prepared, received=1, accepted=1)
    assert backoff_sleeps == []


def test_550_for_every_recipient_fails_at_once_naming_each(server, backoff_sleeps):
    server.script(refuse=["gone@example.org", "left@example.org"])
    prepared, error = failed_delivery(server, to="gone@example.org; left@example.org", retries=2)
    assert "refused every recipient" in str(error)
    assert "gone@example.org: 550 5.1.1" in str(error) and "left@example.org: 550 5.1.1" in str(error)
    assert server.connections == 1 and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_no_starttls_advertised_refuses_to_send_in_clear(server, backoff_sleeps):
    server.script(hide=["STARTTLS"])
    prepared, error = failed_delivery(server, retries=2, smtp_ssl_mode="starttls")
    assert "does not offer STARTTLS" in str(error) and "smtp_ssl_mode" in str(error)
    assert server.connections == 1 and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_no_auth_advertised_is_explained_and_no_login_sent(server, backoff_sleeps):
    server.script(hide=["AUTH"])
    prepared, error = failed_delivery(server, retries=2, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD,
                                      smtp_allow_plaintext_auth="true")
    assert "does not offer AUTH" in str(error) and "smtp_user" in str(error)
    assert SMTP_PASSWORD not in str(error)
    assert server.connections == 1 and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=0, accepted=0)


# --- after the data: uncertain, never sent twice ----------------------------------------------------------

def test_connection_dropped_after_the_data_is_uncertain_and_not_retried(server, backoff_sleeps):
    server.script(data=Fault(drop=True, times=1))
    prepared, error = failed_delivery(server, retries=2)
    assert error.uncertain
    assert "delivery is uncertain" in str(error) and "not sent again" in str(error)
    assert server.connections == 1 and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=1, accepted=0)     # the server has it, once


def test_stall_after_the_data_is_uncertain_and_not_retried(server, backoff_sleeps):
    server.script(data=Fault(stall=STALL, reply="250 OK late", times=1))
    prepared, error = failed_delivery(server, retries=2)
    assert error.uncertain and "delivery is uncertain" in str(error)
    assert server.connections == 1 and backoff_sleeps == []
    assert len(server.received) == 1 and server.received[0] == prepared.message


# --- size limit: refused before any connection -----------------------------------------------------------

def test_max_message_size_is_checked_before_connecting(server):
    mailer = make_mailer(server, max_message_size="300")
    with pytest.raises(MailError) as raised:
        mailer.send(MailRequest(incident_id=1, to="alice@example.com", subject="big", body="x" * 400))
    assert "max_message_size (300 bytes)" in str(raised.value)
    assert not isinstance(raised.value, DeliveryError)
    assert server.connections == 0 and server.received == []


# --- AUTH: one mechanism, one attempt per session ----------------------------------------------------------

@pytest.fixture(scope="module")
def auth_fault_server(tls_pki):
    with FaultSmtpServer(auth=True, tls_context=tls_pki.context) as server:
        yield server


@pytest.fixture
def auth_server(auth_fault_server, backoff_sleeps):
    auth_fault_server.script()
    return auth_fault_server


def auth_commands(server):
    return [command for command in server.commands if command.startswith("AUTH")]


def tls_login(tls_pki, password=SMTP_PASSWORD):
    return {"smtp_ssl_mode": "starttls", "smtp_ssl_cafile": tls_pki.ca_file, "smtp_user": SMTP_USER,
            "smtp_password": password}


def test_wrong_password_is_one_auth_attempt_then_quit(auth_server, tls_pki, backoff_sleeps):
    prepared, error = failed_delivery(auth_server, retries=2, **tls_login(tls_pki, "wrong-password"))
    assert "refused the login" in str(error) and "535" in str(error) and not error.transient
    assert auth_commands(auth_server) == ["AUTH PLAIN"]           # smtplib's login() went on with AUTH LOGIN
    assert auth_server.commands[-1] == "QUIT"                     # no "lost connection after AUTH"
    assert auth_server.connections == 1 and backoff_sleeps == []


def test_login_mechanism_when_plain_is_not_offered(tls_pki, backoff_sleeps):
    with FaultSmtpServer(auth=True, tls_context=tls_pki.context, exclude_auth=("PLAIN",)) as server:
        prepared, outcome = deliver(server, **tls_login(tls_pki))
        assert auth_commands(server) == ["AUTH LOGIN"] and server.messages[0].auth_user == SMTP_USER


def test_stall_at_auth_names_auth_and_never_the_credentials(auth_server, tls_pki, backoff_sleeps):
    auth_server.script(auth=Fault(stall=STALL, reply="235 OK", times=None))
    prepared, error = failed_delivery(auth_server, retries=0, **tls_login(tls_pki))
    assert "Timed out after {0:g} s".format(CLIENT_TIMEOUT) in str(error)
    assert "waiting for the answer to AUTH" in str(error) and SMTP_PASSWORD not in str(error)


def test_454_at_auth_is_transient_and_retried(auth_server, tls_pki, backoff_sleeps):
    auth_server.script(auth=Fault("454 4.7.0 Temporary authentication failure", times=1))
    prepared, outcome = deliver(auth_server, retries=2, **tls_login(tls_pki))
    assert outcome.accepted == ["alice@example.com"]
    assert auth_commands(auth_server) == ["AUTH PLAIN", "AUTH PLAIN"]
    assert auth_server.connections == 2 and backoff_sleeps == [BACKOFF]
    assert_whole_copies(auth_server, prepared, received=1, accepted=1)


def test_454_at_auth_every_time_fails_after_the_retries(auth_server, tls_pki, backoff_sleeps):
    auth_server.script(auth=Fault("454 4.7.0 Temporary authentication failure", times=None))
    prepared, error = failed_delivery(auth_server, retries=1, **tls_login(tls_pki))
    assert "454 4.7.0 Temporary authentication failure" in str(error) and error.transient
    assert auth_commands(auth_server) == ["AUTH PLAIN", "AUTH PLAIN"] and backoff_sleeps == [BACKOFF]


def test_non_ascii_password_is_a_clear_error_before_any_auth(auth_server, tls_pki, backoff_sleeps):
    prepared, error = failed_delivery(auth_server, retries=2, **tls_login(tls_pki, "pässwörd"))
    assert "non-ASCII" in str(error) and "pässwörd" not in str(error) and not error.transient
    assert auth_commands(auth_server) == [] and auth_server.commands[-1] == "QUIT"


# --- QUIT on every failure that leaves the exchange in step -------------------------------------------------

@pytest.mark.parametrize("case", ["sender refused", "every recipient refused", "starttls missing",
                                  "plaintext auth refused", "data refused"])
def test_failures_end_with_quit(server, case):
    script, config = {
        "sender refused": ({"mail": Fault("553 5.7.1 Sender rejected", times=None)}, {}),
        "every recipient refused": ({"refuse": ["alice@example.com"]}, {}),
        "starttls missing": ({}, {"smtp_ssl_mode": "starttls"}),
        "plaintext auth refused": ({}, {"smtp_user": SMTP_USER, "smtp_password": SMTP_PASSWORD}),
        "data refused": ({"data": Fault("554 5.7.1 Spam", times=None)}, {}),
    }[case]
    server.script(**script)
    failed_delivery(server, retries=0, **config)
    assert server.commands[-1] == "QUIT", server.commands


# --- one deadline per session, capped replies ---------------------------------------------------------------

def test_greeting_dripped_a_byte_at_a_time_is_cut_at_the_session_deadline(backoff_sleeps):
    greeting = b"220 " + b"s" * 60 + b" ESMTP\r\n"
    # each byte comes well within the timeout, the whole greeting takes many timeouts
    with ScriptedSocketServer(greeting=greeting, drip=CLIENT_TIMEOUT / 8) as server:
        prepared, error = failed_delivery(server, retries=0)
        assert server.bytes_sent < len(greeting)
    assert "Timed out after {0:g} s".format(CLIENT_TIMEOUT) in str(error)


def endless_ehlo(line):
    if not line.upper().startswith(b"EHLO"):
        return [b"250 OK\r\n"]
    return (b"250-" + b"x" * 60 + b"\r\n" for _ in iter(int, 1))         # never ends


def test_endless_ehlo_continuation_is_cut_at_the_line_cap(backoff_sleeps):
    with ScriptedSocketServer(answer=endless_ehlo) as server:
        prepared, error = failed_delivery(server, retries=2, timeout=5)
        assert server.client_went_away.wait(5), "the client kept reading"
        assert server.bytes_sent < ScriptedSocketServer.MAX_BYTES
    assert "a reply of more than {0} lines".format(smtp_session.MAX_REPLY_LINES) in str(error)
    assert not error.transient and backoff_sleeps == []


def test_reply_of_long_lines_is_cut_at_the_byte_cap(backoff_sleeps):
    long_lines = [b"250-" + b"y" * 8000 + b"\r\n"] * 20 + [b"250 OK\r\n"]
    with ScriptedSocketServer(answer=lambda line: long_lines if line.upper().startswith(b"EHLO")
                              else [b"250 OK\r\n"]) as server:
        prepared, error = failed_delivery(server, retries=0, timeout=5)
    assert "{0} bytes".format(smtp_session.MAX_REPLY_BYTES) in str(error)


# --- SIZE refusals ------------------------------------------------------------------------------------------

def test_552_at_mail_from_is_reported_as_too_big(server, backoff_sleeps):
    server.script(mail=Fault("552 5.3.4 Message size exceeds fixed maximum message size", times=None))
    prepared, error = failed_delivery(server, retries=2)
    assert "refused the message of {0} bytes as too big at MAIL FROM".format(len(prepared.message)) in str(error)
    assert "refused the sender" not in str(error) and not error.transient and backoff_sleeps == []


# --- recipients refused for now are retried ---------------------------------------------------------------------

FIVE = ["r{0}@example.com".format(n) for n in range(1, 6)]


TEN = ["r{0}@example.com".format(n) for n in range(1, 11)]


@pytest.mark.parametrize("retries", [0, 2])
def test_452_too_many_recipients_are_sent_in_further_transactions_at_once(server, backoff_sleeps, retries):
    """RFC 5321 4.5.3.1.10: the server's recipient limit is not a failure; the rest go in the next transaction
    at once, however many retries app.config allows (Postfix smtpd_recipient_limit = 2 lost 4 of 10)."""
    server.script(rcpt_limit=2)
    prepared, outcome = deliver(server, to=", ".join(TEN), retries=retries)
    assert outcome.accepted == TEN and outcome.refused == {}
    assert [message.rcpt_tos for message in server.messages] == [TEN[n:n + 2] for n in range(0, 10, 2)]  # each once
    assert backoff_sleeps == []
    assert_whole_copies(server, prepared, received=5, accepted=5)


def test_452_for_the_first_recipient_is_refused_for_now_and_retried_after_the_backoff(server, backoff_sleeps):
    server.script(rcpt_limit=0)            # no recipient fits: not a limit the next transaction can get past
    prepared, error = failed_delivery(server, to=", ".join(FIVE), retries=1)
    assert error.transient and "452 4.5.3 Too many recipients" in str(error)
    assert backoff_sleeps == [BACKOFF] and server.messages == []


def test_452_with_a_refused_and_a_greylisted_recipient(server, backoff_sleeps):
    server.script(rcpt_limit=2, refuse=["gone@example.org"], defer={"r2@example.com": 1})
    prepared, outcome = deliver(server, to="gone@example.org, " + ", ".join(FIVE), retries=1)
    assert sorted(outcome.accepted) == sorted(FIVE)
    assert list(outcome.refused) == ["gone@example.org"] and outcome.refused["gone@example.org"].startswith("550")
    assert sorted(r for message in server.messages for r in message.rcpt_tos) == sorted(FIVE)     # each once


def test_greylisted_recipient_is_retried_and_the_accepted_one_not_sent_twice(server, backoff_sleeps):
    server.script(defer={"bob@example.com": 1}, refuse=["gone@example.org"])
    prepared, outcome = deliver(server, to="alice@example.com, bob@example.com, gone@example.org", retries=2)
    assert outcome.accepted == ["alice@example.com", "bob@example.com"]
    assert list(outcome.refused) == ["gone@example.org"] and outcome.refused["gone@example.org"].startswith("550")
    assert [message.rcpt_tos for message in server.messages] == [["alice@example.com"], ["bob@example.com"]]
    assert backoff_sleeps == [BACKOFF]


def test_every_recipient_greylisted_once_is_delivered_on_the_retry(server, backoff_sleeps):
    server.script(defer={"alice@example.com": 1})
    prepared, outcome = deliver(server, retries=1)
    assert outcome.accepted == ["alice@example.com"] and backoff_sleeps == [BACKOFF]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_every_recipient_greylisted_beyond_the_retries_fails_as_transient(server, backoff_sleeps):
    server.script(defer={"alice@example.com": 5})
    prepared, error = failed_delivery(server, retries=1)
    assert "refused every recipient" in str(error) and "451 4.7.1" in str(error) and error.transient
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_a_retry_round_that_fails_reports_the_rest_without_failing_the_send(server, backoff_sleeps):
    # alice gets the message; the retry for the greylisted bob meets a sender refusal: the send still succeeded
    server.script(defer={"bob@example.com": 1}, mail=Fault("451 4.3.0 Try later", skip=1, times=None))
    prepared, outcome = deliver(server, to="alice@example.com, bob@example.com", retries=1)
    assert outcome.accepted == ["alice@example.com"]
    assert "451 4.3.0 Try later" in outcome.refused["bob@example.com"]
    assert_whole_copies(server, prepared, received=1, accepted=1)


# --- PIPELINING (RFC 2920) ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipelining_fault_server():
    with FaultSmtpServer(pipelining=True) as server:
        yield server


@pytest.fixture
def pipelined(pipelining_fault_server, backoff_sleeps):
    """(server advertising PIPELINING, WireTap in front of it: send to the tap's port)."""
    pipelining_fault_server.script()
    with WireTap(pipelining_fault_server.port) as tap:
        yield pipelining_fault_server, tap


def read_holding(tap, needle):
    """The piece the tap read that holds ``needle``: what the client wrote without waiting for a reply."""
    return next(piece for piece in tap.client_reads if needle in piece)


def test_pipelining_sends_the_envelope_in_one_write_and_maps_each_reply_to_its_recipient(pipelined):
    server, tap = pipelined
    server.script(refuse=["gone@example.org"])
    prepared, outcome = deliver(tap, to="alice@example.com, gone@example.org, bob@example.com")
    assert outcome.accepted == ["alice@example.com", "bob@example.com"]
    assert outcome.refused == {"gone@example.org": "550 5.1.1 <gone@example.org>: mailbox unavailable"}
    envelope = read_holding(tap, b"MAIL FROM")
    assert envelope.startswith(b"MAIL FROM:<soar@example.com>") and envelope.count(b"RCPT TO") == 3
    assert envelope.endswith(b"DATA\r\n")
    assert read_holding(tap, b"QUIT").endswith(b"\r\n.\r\nQUIT\r\n")      # the final dot and QUIT together
    assert server.commands == ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA", "QUIT"]
    assert server.messages[0].rcpt_tos == ["alice@example.com", "bob@example.com"]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_without_pipelining_each_command_waits_for_its_reply(server):
    with WireTap(server.port) as tap:
        prepared, outcome = deliver(tap, to="alice@example.com, bob@example.com")
    mail = read_holding(tap, b"FROM:<soar@example.com>")       # smtplib writes "mail FROM:"
    assert b"RCPT" not in mail.upper()
    assert b"QUIT" not in read_holding(tap, b"\r\n.\r\n")
    assert server.commands == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_pipelined_sender_refusal_sends_no_message(pipelined, backoff_sleeps):
    server, tap = pipelined
    server.script(mail=Fault("553 5.7.1 Sender address rejected", times=None))
    prepared, error = failed_delivery(tap, retries=2)
    assert "refused the sender soar@example.com: 553 5.7.1" in str(error) and not error.transient
    assert b"Subject: Fault test" not in tap.from_client
    assert server.commands == ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "QUIT"] and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_pipelined_refusal_of_every_recipient_sends_no_message(pipelined, backoff_sleeps):
    server, tap = pipelined
    server.script(refuse=["gone@example.org", "left@example.org"])
    prepared, error = failed_delivery(tap, to="gone@example.org, left@example.org", retries=2)
    assert "refused every recipient" in str(error) and "left@example.org: 550" in str(error)
    assert b"Subject: Fault test" not in tap.from_client
    assert server.commands[-2:] == ["RSET", "QUIT"] and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=0, accepted=0)


def test_pipelined_421_at_rcpt_is_retried(pipelined, backoff_sleeps):
    server, tap = pipelined
    server.script(rcpt=Fault("421 4.3.2 System shutting down", times=1))
    prepared, outcome = deliver(tap, to="alice@example.com, bob@example.com", retries=1)
    assert outcome.accepted == ["alice@example.com", "bob@example.com"]
    assert server.connections == 2 and backoff_sleeps == [BACKOFF]
    assert_whole_copies(server, prepared, received=1, accepted=1)


def test_pipelined_452_recipients_are_retried_each_once(pipelined, backoff_sleeps):
    server, tap = pipelined
    server.script(rcpt_limit=2)
    prepared, outcome = deliver(tap, to=", ".join(FIVE), retries=2)
    assert outcome.accepted == FIVE and outcome.refused == {}
    assert [message.rcpt_tos for message in server.messages] == [FIVE[:2], FIVE[2:4], FIVE[4:]]


def test_pipelined_drop_after_the_data_is_uncertain(pipelined, backoff_sleeps):
    server, tap = pipelined
    server.script(data=Fault(drop=True, times=1))
    prepared, error = failed_delivery(tap, retries=2)
    assert error.uncertain and backoff_sleeps == []
    assert_whole_copies(server, prepared, received=1, accepted=0)


def test_pipelined_smtputf8_envelope_is_sent_in_utf8(pipelined):
    server, tap = pipelined
    transport = make_mailer(tap)._transport
    report = transport.deliver("soar@example.com", ["josé@example.com"], b"Subject: x\r\n\r\nhi\r\n", smtputf8=True)
    assert report.accepted == ["josé@example.com"]
    assert "RCPT TO:<josé@example.com>".encode("utf-8") in read_holding(tap, b"MAIL FROM")
    assert server.messages[0].rcpt_tos == ["josé@example.com"] and "SMTPUTF8" in server.messages[0].mail_options


def pipelining_server_inviting_data_for_nobody(line):
    """Answers as a broken server would: DATA gets 354 although every recipient was refused."""
    command = line[:4].upper()
    if command == b"EHLO":
        return [b"250-broken.example\r\n250-PIPELINING\r\n250 SIZE 10000\r\n"]
    replies = {b"MAIL": b"250 OK\r\n", b"RCPT": b"550 5.1.1 unknown\r\n", b"DATA": b"354 go ahead\r\n",
               b".\r\n": b"554 5.5.1 no valid recipients\r\n", b"RSET": b"250 OK\r\n", b"QUIT": b"221 bye\r\n"}
    return [replies.get(command, b"500 what\r\n")]


def test_data_invited_for_a_refused_transaction_gets_an_empty_message_only(backoff_sleeps):
    with ScriptedSocketServer(answer=pipelining_server_inviting_data_for_nobody) as server:
        prepared, error = failed_delivery(server, retries=0, timeout=5)
        lines = [line.upper() for line in server.lines]        # smtplib writes "rset", "quit"
    assert "refused every recipient" in str(error)
    assert lines[lines.index(b"DATA\r\n") + 1:] == [b".\r\n", b"RSET\r\n", b"QUIT\r\n"]   # no message data


# --- end to end through send_email2 ------------------------------------------------------------------------

E2E_PORT = free_port()
config_data = app_config(E2E_PORT, smtp_retries=2, from_email_address="soar@example.com", max_message_size=2000)

resilient_mock = SoarMock


@pytest.fixture(scope="module")
def e2e_fault_server():
    with FaultSmtpServer(port=E2E_PORT) as server:
        yield server


@pytest.fixture
def e2e_server(e2e_fault_server, backoff_sleeps):
    e2e_fault_server.script()
    return e2e_fault_server


def send_email2(circuits_app, **inputs):
    inputs.setdefault("mail_incident_id", INCIDENT_ID)
    inputs.setdefault("mail_to", "alice@example.com")
    return call_function(circuits_app, "send_email2", inputs)


class TestSendEmail2Faults:

    def test_transient_421_recovers_within_the_retries(self, circuits_app, e2e_server, backoff_sleeps):
        e2e_server.script(mail=Fault("421 4.7.0 Try again later", times=2))
        result = send_email2(circuits_app, mail_body="after two 421s")
        assert result["success"] is True, result["reason"]
        assert e2e_server.connections == 3 and backoff_sleeps == [BACKOFF, 2 * BACKOFF]
        assert len(e2e_server.messages) == 1 and len(e2e_server.received) == 1

    def test_drop_after_data_is_a_failed_result_saying_uncertain(self, circuits_app, e2e_server, backoff_sleeps):
        e2e_server.script(data=Fault(drop=True, times=1))
        result = send_email2(circuits_app, mail_body="maybe delivered")
        assert result["success"] is False
        assert "delivery is uncertain" in result["reason"]
        assert len(e2e_server.received) == 1 and e2e_server.messages == [] and backoff_sleeps == []

    def test_552_is_a_failed_result_with_the_server_reply(self, circuits_app, e2e_server, backoff_sleeps):
        e2e_server.script(data=Fault("552 5.3.4 Message too big for this server", times=None))
        result = send_email2(circuits_app, mail_body="too big?")
        assert result["success"] is False
        assert "552 5.3.4 Message too big for this server" in result["reason"]
        assert e2e_server.connections == 1 and backoff_sleeps == []

    def test_max_message_size_fails_before_connecting(self, circuits_app, e2e_server):
        result = send_email2(circuits_app, mail_body="y" * 3000)
        assert result["success"] is False
        assert "max_message_size (2000 bytes)" in result["reason"]
        assert e2e_server.connections == 0
