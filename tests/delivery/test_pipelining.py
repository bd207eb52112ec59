# -*- coding: utf-8 -*-
"""PIPELINING (RFC 2920), CHUNKING (RFC 3030) and pooled sessions, against real servers on 127.0.0.1.

The server is aiosmtpd with the two extensions (tests/support/esmtp_server.py), or plain aiosmtpd, which offers
neither. A delay proxy in front (benchmarks/wan_proxy.py) counts the client's flights: the round trips it
waited for. The counts, not times, are asserted.
"""

import pytest

from benchmarks.wan_proxy import DelayProxy
from fn_outbound_email.lib.delivery.smtp import transaction as smtp_transaction
from fn_outbound_email.lib.delivery.smtp.pool import POOL
from fn_outbound_email.lib.errors import DeliveryError
from fn_outbound_email.lib.mailer import MailRequest
from tests.support import config_section
from tests.support.esmtp_server import EsmtpTestServer
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, RecordingHandler, SmtpTestServer

RECIPIENTS = ["alice@example.com", "bob@example.com", "carol@example.com"]
DELAY = 0.02       # one way; long enough that a reply and the client's answer to it are told apart


def make_mailer(port, **config):
    return config_section.mailer(port, **dict({"from_email_address": "soar@example.com",
                                               "smtp_connection_reuse": False}, **config))


def request(to=", ".join(RECIPIENTS), body="Hello over a pipelined session\n.a line with a leading dot\n"):
    return MailRequest(incident_id=1, to=to, subject="Pipelined", body=body)


def commands(server):
    return [command.split(":")[0].split(" ")[0] for command in server.commands]


class RefusingSender(RecordingHandler):
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        return "550 5.7.1 Sender rejected"


# --- one transaction ------------------------------------------------------------------------------------------
def test_pipelining_and_chunking_send_the_whole_transaction_in_one_write():
    with EsmtpTestServer() as server, DelayProxy(server.port, delay=DELAY) as proxy:
        mailer = make_mailer(proxy.port)
        prepared = mailer.prepare(request())
        outcome = mailer.deliver(prepared)
        assert outcome.accepted == RECIPIENTS and outcome.refused == {}
        assert commands(server) == ["MAIL", "RCPT", "RCPT", "RCPT", "BDAT", "QUIT"]
        assert server.commands[4] == "BDAT {0} LAST".format(len(prepared.message))
        assert proxy.flights == 2                       # EHLO; then MAIL + RCPT x3 + BDAT + message + QUIT
        assert len(server.messages) == 1
        assert server.messages[0].data == prepared.message   # no dot-stuffing with BDAT: byte for byte


def test_pipelining_without_chunking_groups_the_envelope_and_the_dot_with_quit():
    with EsmtpTestServer(extensions=("PIPELINING",)) as server, DelayProxy(server.port, delay=DELAY) as proxy:
        mailer = make_mailer(proxy.port)
        prepared = mailer.prepare(request())
        mailer.deliver(prepared)
        assert commands(server) == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA", "QUIT"]
        assert proxy.flights == 3                       # EHLO; MAIL + RCPT x3 + DATA; message + dot + QUIT
        assert server.messages[0].data == prepared.message


def test_a_server_without_pipelining_gets_the_classic_exchange():
    with SmtpTestServer() as server, DelayProxy(server.port, delay=DELAY) as proxy:
        make_mailer(proxy.port).send(request())
        assert len(server.messages) == 1
        # EHLO, MAIL, RCPT x3, DATA, message + dot, QUIT (without PIPELINING a client waits before each command)
        assert proxy.flights == 8


@pytest.mark.parametrize("extensions", [("PIPELINING", "CHUNKING"), ("PIPELINING",)])
def test_a_refused_recipient_inside_a_group_is_reported_and_the_others_get_the_mail(extensions):
    with EsmtpTestServer(extensions=extensions, refuse=["bob@example.com"]) as server:
        outcome = make_mailer(server.port).send(request())
        assert outcome.accepted == ["alice@example.com", "carol@example.com"]
        assert list(outcome.refused) == ["bob@example.com"] and outcome.refused["bob@example.com"].startswith("550")
        assert [message.rcpt_tos for message in server.messages] == [["alice@example.com", "carol@example.com"]]


@pytest.mark.parametrize("extensions", [("PIPELINING", "CHUNKING"), ("PIPELINING",)])
def test_every_recipient_refused_inside_a_group_sends_no_message(extensions):
    with EsmtpTestServer(extensions=extensions, refuse=RECIPIENTS) as server:
        with pytest.raises(DeliveryError) as raised:
            make_mailer(server.port).send(request())
        assert "refused every recipient" in str(raised.value)
        assert server.messages == []


@pytest.mark.parametrize("extensions", [("PIPELINING", "CHUNKING"), ("PIPELINING",)])
def test_a_refused_sender_inside_a_group_sends_no_message(extensions):
    with EsmtpTestServer(extensions=extensions, handler=RefusingSender()) as server:
        with pytest.raises(DeliveryError) as raised:
            make_mailer(server.port).send(request())
        assert "refused the sender soar@example.com: 550 5.7.1 Sender rejected" in str(raised.value)
        assert not raised.value.transient
        assert server.messages == []
        if "CHUNKING" not in extensions:        # the DATA group was answered 503; the transaction is reset
            assert "RSET" in commands(server)


def test_a_big_message_waits_for_the_envelope_replies_before_its_chunk(monkeypatch):
    monkeypatch.setattr(smtp_transaction, "INLINE_MESSAGE_BYTES", 100)
    with EsmtpTestServer() as server, DelayProxy(server.port, delay=DELAY) as proxy:
        mailer = make_mailer(proxy.port)
        prepared = mailer.prepare(request(body="..dots stay as they are\n" * 50))
        mailer.deliver(prepared)
        assert commands(server) == ["MAIL", "RCPT", "RCPT", "RCPT", "BDAT", "QUIT"]
        assert proxy.flights == 3                       # EHLO; MAIL + RCPT x3; BDAT + message + QUIT
        assert server.messages[0].data == prepared.message


def test_starttls_and_auth_then_one_group_is_six_round_trips(tls_pki):
    context = tls_pki.context
    with EsmtpTestServer(tls_context=context, require_starttls=True, auth=True) as server, \
            DelayProxy(server.port, delay=DELAY) as proxy:
        make_mailer(proxy.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls_pki.ca_file,
                    smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD).send(request())
        assert server.messages[0].tls and server.messages[0].auth_user == SMTP_USER
        # EHLO, STARTTLS, TLS hello, TLS finished + EHLO, AUTH, the transaction
        assert proxy.flights == 6


# --- pooled sessions -------------------------------------------------------------------------------------------
def test_sends_share_one_session_with_rset_between():
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true")
        for _ in range(3):
            mailer.send(request())
        assert len(server.messages) == 3
        assert len({message.peer for message in server.messages}) == 1
        assert commands(server).count("RSET") == 2 and "QUIT" not in commands(server)
        assert POOL.idle_count() == 1
        POOL.close_all()
        assert POOL.idle_count() == 0


def test_a_session_the_server_dropped_while_idle_is_replaced_before_mail_from():
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true")
        mailer.send(request(to="alice@example.com"))
        server.stop()                                   # every session is cut while the pooled one is idle
        server.start()
        mailer.send(request(to="bob@example.com"))
        assert [message.rcpt_tos for message in server.messages] == [["alice@example.com"], ["bob@example.com"]]
        assert len({message.peer for message in server.messages}) == 2


def test_idle_sessions_are_closed_with_quit_after_the_idle_timeout():
    import time
    with EsmtpTestServer() as server:
        make_mailer(server.port, smtp_connection_reuse="true", smtp_idle_timeout=1).send(request())
        assert POOL.idle_count() == 1
        deadline = time.monotonic() + 10                # the reaper closes it about 1 s later
        while POOL.idle_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert POOL.idle_count() == 0
        while "QUIT" not in commands(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert commands(server)[-1] == "QUIT"


def test_a_pooled_session_gets_a_new_deadline_for_each_use():
    """Cheap: smtp_conn_timeout is 1 s, so the first use's deadline has passed after a short idle wait (not the
    30 s of the default idle timeout); the session must still serve the next send, with a deadline of its own."""
    import os
    import time
    slowness = float(os.environ.get("TEST_SLOWNESS", "1"))
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true", smtp_conn_timeout=1, smtp_idle_timeout=60)
        mailer.send(request(to="alice@example.com"))
        time.sleep(1.5 * slowness)                      # past the first use's deadline, well within the idle time
        mailer.send(request(to="bob@example.com"))
        assert [message.rcpt_tos for message in server.messages] == [["alice@example.com"], ["bob@example.com"]]
        assert len({message.peer for message in server.messages}) == 1, "the pooled session was not reused"


class ExtraReplyAfterData(RecordingHandler):
    """Answers the end of the message with its 250 and one more, that no command asked for."""

    async def handle_DATA(self, server, session, envelope):
        status = await super().handle_DATA(server, session, envelope)
        return status + "\r\n250 2.0.0 an extra reply"


@pytest.mark.parametrize("extensions", [("PIPELINING", "CHUNKING"), ("PIPELINING",), ()])
def test_a_session_with_an_unread_reply_is_not_reused(extensions):
    """One extra 250 would shift every reply after it: the refused recipient below read as accepted."""
    handler = ExtraReplyAfterData(refuse=["gone@example.org"])
    with EsmtpTestServer(extensions=extensions, handler=handler) as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true", smtp_retries=0)
        mailer.send(request(to="alice@example.com"))
        with pytest.raises(DeliveryError) as raised:
            mailer.send(request(to="gone@example.org"))
        assert "refused every recipient: gone@example.org: 550 5.1.1" in str(raised.value)
        assert len(server.messages) == 1


def test_a_pooled_send_is_one_round_trip_with_rset_in_the_same_write():
    with EsmtpTestServer() as server, DelayProxy(server.port, delay=DELAY) as proxy:
        mailer = make_mailer(proxy.port, smtp_connection_reuse="true")
        mailer.send(request())
        proxy.reset()
        mailer.send(request())
        assert commands(server)[-6:] == ["RSET", "MAIL", "RCPT", "RCPT", "RCPT", "BDAT"]
        assert proxy.flights == 1                       # RSET + MAIL + RCPT x3 + BDAT + message: one round trip
        assert len({message.peer for message in server.messages}) == 1 and len(server.messages) == 2


def test_a_session_whose_transaction_delivered_nothing_is_not_pooled():
    """Postfix's error penalty stays with the connection: 12 failing sends took 26 s with reuse."""
    with EsmtpTestServer(refuse=["gone@example.org"]) as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true", smtp_retries=0)
        with pytest.raises(DeliveryError, match="refused every recipient"):
            mailer.send(request(to="gone@example.org"))
        assert POOL.idle_count() == 0 and commands(server)[-1] == "QUIT"
        mailer.send(request(to="alice@example.com"))
        assert POOL.idle_count() == 1                   # one that delivered is kept


def test_reuse_off_opens_and_quits_a_session_per_send():
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="false")
        mailer.send(request())
        mailer.send(request())
        assert len({message.peer for message in server.messages}) == 2
        assert commands(server).count("QUIT") == 2 and POOL.idle_count() == 0


def test_sessions_of_other_settings_are_not_shared():
    with EsmtpTestServer(auth=True) as server:
        make_mailer(server.port, smtp_connection_reuse="true", smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD,
                    smtp_allow_plaintext_auth="true").send(request())
        with pytest.raises(DeliveryError):            # no login: the pooled, logged-in session must not serve it
            make_mailer(server.port, smtp_connection_reuse="true").send(request())
        assert len(server.messages) == 1


def test_a_session_logged_in_in_clear_does_not_serve_settings_that_forbid_it():
    with EsmtpTestServer(auth=True) as server:
        login = {"smtp_connection_reuse": "true", "smtp_user": SMTP_USER, "smtp_password": SMTP_PASSWORD}
        make_mailer(server.port, smtp_allow_plaintext_auth="true", **login).send(request())
        with pytest.raises(DeliveryError, match="credentials would cross the network in clear"):
            make_mailer(server.port, smtp_allow_plaintext_auth="false", **login).send(request())
        assert len(server.messages) == 1


def test_a_session_past_its_maximum_age_is_not_reused(monkeypatch):
    from fn_outbound_email.lib.delivery.smtp import pool
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true")
        mailer.send(request(to="alice@example.com"))
        assert POOL.idle_count() == 1
        monkeypatch.setattr(pool, "MAX_SESSION_SECONDS", 0)     # the pooled session is now past its age
        mailer.send(request(to="bob@example.com"))
        assert len({message.peer for message in server.messages}) == 2
        assert POOL.idle_count() == 0                   # nor is the new one kept: it is past its age too
        assert commands(server).count("QUIT") == 2


def test_a_forked_child_starts_with_an_empty_pool_and_leaves_the_parent_its_session():
    import os
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true")
        mailer.send(request(to="alice@example.com"))
        assert POOL.idle_count() == 1
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:                                    # the child: report what it sees, say nothing, go
            try:
                os.write(writer, str(POOL.idle_count()).encode())
            finally:
                os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as child_output:
            seen_by_child = child_output.read()
        os.waitpid(pid, 0)
        assert seen_by_child == b"0"
        mailer.send(request(to="bob@example.com"))      # the parent's session still works: the child was silent
        assert len({message.peer for message in server.messages}) == 1
        assert "QUIT" not in commands(server)


# --- UTF-8 mail through CHUNKING ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reuse", ["true", "false"])
@pytest.mark.parametrize("lines", [1, 12000], ids=["one write", "over 256 KiB"])
def test_smtputf8_mail_through_chunking_arrives_byte_for_byte(reuse, lines):
    """BDAT announces octets: a size counted in characters would cut a UTF-8 message short (RFC 3030)."""
    with EsmtpTestServer() as server:
        mailer = make_mailer(server.port, smtp_connection_reuse=reuse)
        sent = []
        for number in range(2):
            mail = MailRequest(incident_id=1, to="josé@example.com", subject="Störung Nr. {0} ✓".format(number),
                               body="Grüße aus dem SOC: Prüfung bestanden ✓\n" * lines)
            prepared = mailer.prepare(mail)
            assert len(prepared.message.decode("utf-8")) < len(prepared.message)     # multi-byte characters in it
            assert (len(prepared.message) > smtp_transaction.INLINE_MESSAGE_BYTES) == (lines > 1)
            outcome = mailer.deliver(prepared)
            assert outcome.accepted == ["josé@example.com"]
            sent.append(prepared.message)
        assert [message.data for message in server.messages] == sent
        assert all("SMTPUTF8" in message.mail_options for message in server.messages)
        subjects = [message.message["Subject"] for message in server.messages]
        assert subjects == ["Störung Nr. 0 ✓", "Störung Nr. 1 ✓"]
        assert commands(server).count("BDAT") == 2 and "DATA" not in commands(server)
        assert len({message.peer for message in server.messages}) == (1 if reuse == "true" else 2)


@pytest.mark.parametrize("extra_reply", [False, True])
def test_a_pooled_tls_session_is_reused_unless_something_is_unread(tls_pki, extra_reply):
    """Over TLS the check reads records without waiting: a session ticket is no data, an extra reply is."""
    handler = ExtraReplyAfterData() if extra_reply else RecordingHandler()
    with EsmtpTestServer(handler=handler, tls_context=tls_pki.context, require_starttls=True) as server:
        mailer = make_mailer(server.port, smtp_connection_reuse="true", smtp_ssl_mode="starttls",
                             smtp_ssl_cafile=tls_pki.ca_file)
        mailer.send(request(to="alice@example.com"))
        mailer.send(request(to="bob@example.com"))
        assert all(message.tls for message in server.messages)
        assert len({message.peer for message in server.messages}) == (2 if extra_reply else 1)
