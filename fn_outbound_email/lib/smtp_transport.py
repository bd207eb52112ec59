# -*- coding: utf-8 -*-
"""The SMTP conversation: connect (plain, STARTTLS or implicit TLS), authenticate, deliver.

Every network step is bounded by ``smtp_conn_timeout``. Transient failures
(connection problems, 4xx replies) are retried ``smtp_retries`` times with
backoff; once the message data has been sent the outcome may be a delivered
mail, so a failure from then on is reported as uncertain and never retried.
"""

import functools
import hashlib
import logging
import re
import smtplib
import socket
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List

from fn_outbound_email.lib.errors import DeliveryError, MailError
from fn_outbound_email.lib.smtp_pool import POOL, close_session

LOG = logging.getLogger(__name__)

BACKOFF_SECONDS = 2.0          # first retry after 2 s, then 4 s, 8 s ...
DATA_CHUNK_BYTES = 1 << 20     # the message is sent in pieces of about this size
# with PIPELINING and CHUNKING a message up to this size goes out in the same write as MAIL FROM and RCPT TO
# (BDAT ... LAST): the whole transaction in one round trip. A bigger one waits for the envelope's answers
# first, so a refused sender or recipient list does not cost sending megabytes for nothing.
INLINE_MESSAGE_BYTES = 256 * 1024
_LINE_STARTING_WITH_DOT = re.compile(rb"(?m)^\.")


@dataclass
class DeliveryReport:
    accepted: List[str] = field(default_factory=list)
    refused: Dict[str, str] = field(default_factory=dict)


def _reply_text(code, message):
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return "{0} {1}".format(code, " ".join(str(message).split())).strip()


def _abandon_transaction(smtp, code):
    """RSET after a refusal, so its reply stays the reason; after 421 the server is closing, so just close."""
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _envelope_commands(envelope_from, options, recipients):
    return ["MAIL FROM:{0}{1}".format(smtplib.quoteaddr(envelope_from), "".join(" " + option for option in options))] \
        + ["RCPT TO:{0}".format(smtplib.quoteaddr(recipient)) for recipient in recipients]


def _command_bytes(commands, options):
    """Command lines for one write; UTF-8 only where the SMTPUTF8 option allows it (RFC 6531)."""
    encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
    return "".join(command + "\r\n" for command in commands).encode(encoding)


def _read_quit_reply(smtp):
    """The answer to a QUIT sent with the message; the session ends either way."""
    try:
        smtp.getreply()
    except (smtplib.SMTPException, OSError):
        pass
    smtp.close()


@functools.lru_cache(maxsize=None)
def ehlo_name():
    """The name this host gives in EHLO, as smtplib works it out, once per process: smtplib looks the host
    name up (a reverse DNS query where /etc/hosts does not have it) for every connection otherwise."""
    return smtplib.SMTP().local_hostname        # no server given: nothing is connected


class PasswordAuthenticator:
    """AUTH LOGIN/PLAIN (whatever smtplib and the server agree on) with the configured password."""

    def __init__(self, user, password):
        self._user = user
        self._password = password

    def identity(self):
        """Who logs in, for telling pooled sessions apart (a digest: the password itself stays here)."""
        return self._user, hashlib.sha256((self._password or "").encode("utf-8")).hexdigest()

    def authenticate(self, smtp):
        try:
            smtp.login(self._user, self._password)
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError("The SMTP server does not offer AUTH{0}; check smtp_ssl_mode (many servers offer "
                                "AUTH only after STARTTLS) or remove smtp_user".format(
                                    "" if smtp.does_esmtp else " (no ESMTP)"))
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError("The SMTP server refused the login of user '{0}': {1}; check smtp_user and "
                                "smtp_password".format(self._user, _reply_text(err.smtp_code, err.smtp_error)),
                                smtp_code=err.smtp_code)
        except smtplib.SMTPException as err:
            raise DeliveryError("SMTP AUTH failed for user '{0}': {1}".format(self._user, err))


def tls_context(ssl_verify):
    """Verification as app.config says: system CAs, a CA bundle, or (warned) none."""
    if ssl_verify is False:
        LOG.warning("smtp_ssl_cafile = false: the SMTP server's TLS certificate is NOT verified")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ssl_verify is True:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ssl_verify)
    except ssl.SSLError as err:
        raise DeliveryError("smtp_ssl_cafile = '{0}' holds no CA certificate in PEM form ({1}); give the PEM bundle "
                            "of the CA that issued the SMTP server's certificate".format(ssl_verify,
                                                                                     err.reason or err))


class SmtpTransport:
    """Connects to the configured server and delivers prepared messages."""

    def __init__(self, settings, authenticator=None):
        self._settings = settings
        self._authenticator = authenticator

    @property
    def server(self):
        return "{0}:{1}".format(self._settings.smtp_server, self._settings.smtp_port)

    # --- public ------------------------------------------------------------------------------------
    def deliver(self, envelope_from, recipients, message):
        """Send ``message`` (bytes) to ``recipients``; retry transient failures; return a DeliveryReport."""
        attempt = 0
        while True:
            try:
                return self._deliver_once(envelope_from, recipients, message)
            except DeliveryError as err:
                if not err.transient or err.uncertain or attempt >= self._settings.retries:
                    raise
                attempt += 1
                delay = BACKOFF_SECONDS * (2 ** (attempt - 1))
                LOG.warning("Transient SMTP failure (%s); retry %s of %s in %s s",
                            err, attempt, self._settings.retries, "{0:.1f}".format(delay))
                time.sleep(delay)

    def _deliver_once(self, envelope_from, recipients, message):
        reuse = self._settings.connection_reuse
        smtp = self._pooled_session() if reuse else None
        if smtp is None:
            smtp = self._connect()
        try:
            report = self._transaction(smtp, envelope_from, recipients, message, quit_after=not reuse)
        except BaseException:
            close_session(smtp)
            raise
        if reuse:
            POOL.give_back(self._pool_key(), smtp, self._settings.idle_seconds)
        return report

    def _pooled_session(self):
        """An idle session of these settings that still answers RSET (the reset between two messages), or None.

        RSET costs one round trip and is not pipelined with the transaction: a session the server dropped
        while it was idle shows here, before MAIL FROM, and is replaced with a fresh one; no message is ever
        sent twice because a reused session died mid-transaction.
        """
        while True:
            smtp = POOL.take(self._pool_key())
            if smtp is None:
                return None
            try:
                code, _ = smtp.rset()
                if code == 250:
                    return smtp
            except (smtplib.SMTPException, OSError):
                pass
            smtp.close()

    def _pool_key(self):
        """What makes two sessions interchangeable: the server, its TLS checks and who is logged in."""
        settings = self._settings
        credentials = getattr(self._authenticator, "identity", None)
        return (settings.smtp_server, settings.smtp_port, settings.ssl_mode, settings.ssl_verify,
                type(self._authenticator).__name__, credentials() if credentials else None)

    def check_connection(self):
        """Connect, negotiate TLS, authenticate, NOOP and QUIT: what selftest needs. Sends nothing."""
        with self.session() as smtp:
            code, reply = smtp.noop()
            if code != 250:
                raise DeliveryError("The SMTP server answered NOOP with {0}".format(_reply_text(code, reply)),
                                    smtp_code=code)

    @contextmanager
    def session(self):
        """A connected, TLS-negotiated, authenticated SMTP session; QUIT on exit."""
        smtp = self._connect()
        try:
            yield smtp
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    # --- connection -----------------------------------------------------------------------------------
    def _connect(self):
        settings = self._settings
        # host given to the constructor (which connects): smtplib keeps it for TLS server_hostname checks
        try:
            if settings.ssl_mode == "ssl":
                smtp = smtplib.SMTP_SSL(settings.smtp_server, settings.smtp_port, local_hostname=ehlo_name(),
                                        timeout=settings.timeout, context=tls_context(settings.ssl_verify))
            else:
                smtp = smtplib.SMTP(settings.smtp_server, settings.smtp_port, local_hostname=ehlo_name(),
                                    timeout=settings.timeout)
        except smtplib.SMTPConnectError as err:
            raise DeliveryError("The SMTP server {0} greeted with {1}".format(
                self.server, _reply_text(err.smtp_code, err.smtp_error)),
                transient=400 <= err.smtp_code < 500, smtp_code=err.smtp_code)
        except Exception as err:
            raise self._connection_error(err, "connecting to")
        try:
            # the message and its final dot are two writes with no reply between: with Nagle on, the dot waits
            # for the server's delayed ACK (measured: 44 ms per message on loopback, 1.2 ms without)
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo_or_helo_if_needed()
            if settings.ssl_mode == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError("The SMTP server {0} does not offer STARTTLS; set smtp_ssl_mode to ssl (port "
                                        "465) or None".format(self.server))
                smtp.starttls(context=tls_context(settings.ssl_verify))
                smtp.ehlo()
            if self._authenticator is not None:
                self._authenticator.authenticate(smtp)
            return smtp
        except MailError:              # DeliveryError, or the authenticator's own (OAuth2Error): reason kept as is
            smtp.close()
            raise
        except Exception as err:
            smtp.close()
            raise self._connection_error(err, "talking to")

    def _connection_error(self, err, doing):
        server = self.server
        if isinstance(err, DeliveryError):
            return err
        if isinstance(err, ssl.SSLCertVerificationError):
            return DeliveryError("The TLS certificate of the SMTP server {0} is not trusted ({1}); set "
                                 "smtp_ssl_cafile to the CA bundle that issued it".format(
                                     server, err.verify_message or err.reason))
        if isinstance(err, ssl.SSLError):
            return DeliveryError("TLS with the SMTP server {0} failed: {1}; check smtp_ssl_mode (ssl for port 465, "
                                 "starttls for 587) ".format(server, err.reason or err).strip())
        if isinstance(err, socket.gaierror):
            return DeliveryError("The SMTP server name '{0}' cannot be resolved ({1}); check smtp_server".format(
                self._settings.smtp_server, err.strerror or err))
        if isinstance(err, (socket.timeout, TimeoutError)) or (
                isinstance(err, smtplib.SMTPServerDisconnected) and "timed out" in str(err)):
            return DeliveryError("Timed out after {0:g} s {1} the SMTP server {2}; check smtp_server, smtp_port "
                                 "and firewalls, or raise smtp_conn_timeout".format(
                                     self._settings.timeout, doing, server), transient=True)
        if isinstance(err, ConnectionRefusedError):
            return DeliveryError("The SMTP server {0} refused the connection; check smtp_server and smtp_port".format(
                server), transient=True)
        if isinstance(err, smtplib.SMTPServerDisconnected):
            return DeliveryError("The SMTP server {0} closed the connection ({1})".format(server, err), transient=True)
        if isinstance(err, smtplib.SMTPResponseException):
            return DeliveryError("The SMTP server {0} answered {1}".format(
                server, _reply_text(err.smtp_code, err.smtp_error)),
                transient=400 <= err.smtp_code < 500, smtp_code=err.smtp_code)
        if isinstance(err, OSError):
            return DeliveryError("Network error {0} the SMTP server {1}: {2}".format(doing, server, err), transient=True)
        return DeliveryError("SMTP error {0} {1}: {2}".format(doing, server, err))

    # --- one mail transaction -------------------------------------------------------------------------
    def _transaction(self, smtp, envelope_from, recipients, message, quit_after=False):
        """MAIL FROM, RCPT TO for each recipient, then the message; QUIT too when ``quit_after``.

        With PIPELINING (RFC 2920) the envelope goes out in one write and its replies are read in order;
        otherwise one command at a time, as before. With CHUNKING (RFC 3030) the message goes as BDAT ... LAST,
        which needs no 354 round trip and no dot-stuffing.
        """
        options = ["SIZE={0}".format(len(message))] if smtp.has_extn("size") else []
        chunking = smtp.has_extn("chunking")
        pipelining = smtp.has_extn("pipelining")
        if pipelining and chunking and len(message) <= INLINE_MESSAGE_BYTES:
            return self._one_write_transaction(smtp, envelope_from, options, recipients, message, quit_after)
        try:
            if pipelining:
                report = self._pipelined_envelope(smtp, envelope_from, options, recipients, chunking)
            else:
                report = self._classic_envelope(smtp, envelope_from, options, recipients, chunking)
        except DeliveryError:
            raise
        except Exception as err:
            raise self._connection_error(err, "sending to")

        # from here on the server may have the message: failures are uncertain, never retried
        try:
            if chunking:
                self._send_bdat(smtp, message, quit_after)
            else:
                self._send_data(smtp, message, quit_after)
            code, reply = smtp.getreply()
        except Exception as err:
            raise self._uncertain(err)
        if quit_after:
            _read_quit_reply(smtp)
        self._check_message_reply(code, reply)
        return report

    def _classic_envelope(self, smtp, envelope_from, options, recipients, chunking):
        """One command, one reply: MAIL, each RCPT, then DATA (its 354) unless the message goes as BDAT."""
        code, reply = smtp.mail(envelope_from, options)
        self._check_sender(smtp, envelope_from, code, reply)
        report = DeliveryReport()
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            self._record_recipient(smtp, report, recipient, code, reply)
        self._check_some_accepted(smtp, report, code)
        if not chunking:
            code, reply = smtp.docmd("DATA")
            self._check_data_reply(code, reply)
        return report

    def _pipelined_envelope(self, smtp, envelope_from, options, recipients, chunking):
        """MAIL, every RCPT and (without CHUNKING) DATA in one write, the replies mapped back in order.

        DATA ends the group, the only place RFC 2920 allows it. AUTH is never part of a group: its outcome
        changes the session's state, which RFC 2920 section 3.1 asks a client to wait for, as for EHLO; it is
        paid once per session, and a pooled session does not pay it again.
        """
        commands = _envelope_commands(envelope_from, options, recipients) + ([] if chunking else ["DATA"])
        smtp.send(_command_bytes(commands, options))
        # every command is answered, in order, even after a refusal (the later ones with 503): read them all
        mail_code, mail_reply = smtp.getreply()
        rcpt_replies = [smtp.getreply() for _ in recipients]
        data_code, data_reply = (None, None) if chunking else smtp.getreply()
        nothing_to_send = mail_code != 250 or not any(code in (250, 251) for code, _ in rcpt_replies)
        if data_code == 354 and nothing_to_send:
            # DATA was accepted though no recipient was: end the empty message, which goes to nobody
            smtp.send(b".\r\n")
            smtp.getreply()
        self._check_sender(smtp, envelope_from, mail_code, mail_reply)
        report = DeliveryReport()
        for recipient, (code, reply) in zip(recipients, rcpt_replies):
            self._record_recipient(smtp, report, recipient, code, reply)
        self._check_some_accepted(smtp, report, rcpt_replies[-1][0])
        if not chunking:
            self._check_data_reply(data_code, data_reply)
        return report

    def _one_write_transaction(self, smtp, envelope_from, options, recipients, message, quit_after):
        """PIPELINING and CHUNKING with a small message: MAIL, every RCPT, BDAT ... LAST, the message (and QUIT)
        in one write; one round trip for the whole transaction.

        RFC 3030 lets BDAT and its chunk be pipelined, and a server reads the chunk whatever it answers, so a
        refused sender or recipient list only costs the chunk's bytes (at most INLINE_MESSAGE_BYTES). The message
        is out with the first write, so a connection lost before every reply is read is an uncertain delivery.
        """
        commands = _envelope_commands(envelope_from, options, recipients) + ["BDAT {0} LAST".format(len(message))]
        try:
            smtp.send(_command_bytes(commands, options) + message + (b"QUIT\r\n" if quit_after else b""))
            mail_code, mail_reply = smtp.getreply()
            rcpt_replies = [smtp.getreply() for _ in recipients]
            code, reply = smtp.getreply()
        except Exception as err:
            raise self._uncertain(err)
        if quit_after:
            _read_quit_reply(smtp)
        # a refused sender or recipient list means the chunk was refused too: nothing to reset
        self._check_sender(smtp, envelope_from, mail_code, mail_reply, abandon=False)
        report = DeliveryReport()
        for recipient, (rcpt_code, rcpt_reply) in zip(recipients, rcpt_replies):
            self._record_recipient(smtp, report, recipient, rcpt_code, rcpt_reply)
        self._check_some_accepted(smtp, report, rcpt_replies[-1][0], abandon=False)
        self._check_message_reply(code, reply)
        return report

    def _uncertain(self, err):
        return DeliveryError("The connection to the SMTP server {0} failed after the message was sent ({1}); "
                             "delivery is uncertain, so it was not sent again: check the recipients' mailboxes "
                             "before resending".format(self.server, err), uncertain=True)

    @staticmethod
    def _check_message_reply(code, reply):
        if code != 250:
            raise DeliveryError("The SMTP server did not accept the message: {0}".format(_reply_text(code, reply)),
                                transient=400 <= code < 500, smtp_code=code)

    def _check_sender(self, smtp, envelope_from, code, reply, abandon=True):
        if code != 250:
            if abandon:
                _abandon_transaction(smtp, code)
            raise DeliveryError("The SMTP server refused the sender {0}: {1}".format(
                envelope_from, _reply_text(code, reply)), transient=400 <= code < 500, smtp_code=code)

    def _record_recipient(self, smtp, report, recipient, code, reply):
        if code in (250, 251):
            report.accepted.append(recipient)
        elif code == 421:
            _abandon_transaction(smtp, code)
            raise DeliveryError("The SMTP server {0} is closing the connection: {1}".format(
                self.server, _reply_text(code, reply)), transient=True, smtp_code=code)
        else:
            report.refused[recipient] = _reply_text(code, reply)

    @staticmethod
    def _check_some_accepted(smtp, report, last_code, abandon=True):
        if not report.accepted:
            if abandon:
                _abandon_transaction(smtp, last_code)
            transient = all(reason.startswith("4") for reason in report.refused.values())
            raise DeliveryError("The SMTP server refused every recipient: {0}".format(
                "; ".join("{0}: {1}".format(k, v) for k, v in report.refused.items())), transient=transient)

    @staticmethod
    def _check_data_reply(code, reply):
        if code != 354:
            raise DeliveryError("The SMTP server refused DATA: {0}".format(_reply_text(code, reply)),
                                transient=400 <= code < 500, smtp_code=code)

    @staticmethod
    def _send_bdat(smtp, message, quit_after):
        """The message as one BDAT ... LAST chunk: exactly its octets, no dot-stuffing (RFC 3030)."""
        smtp.send("BDAT {0} LAST\r\n".format(len(message)).encode("ascii"))
        for start in range(0, len(message), DATA_CHUNK_BYTES):
            end = start + DATA_CHUNK_BYTES
            smtp.send(message[start:end] + (b"QUIT\r\n" if quit_after and end >= len(message) else b""))

    @staticmethod
    def _send_data(smtp, message, quit_after=False):
        """Send the message after DATA: dot-stuffed, in line-aligned chunks, the last one with the terminating dot
        (one write for a small message, so the server reads it in one go), and QUIT when ``quit_after``: the
        server answers the message, then QUIT, and the client waits once for both."""
        position, size = 0, len(message)
        terminator = b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n"
        while True:
            end = message.find(b"\n", min(position + DATA_CHUNK_BYTES, size) - 1)
            end = size if end == -1 else end + 1
            chunk = _LINE_STARTING_WITH_DOT.sub(b"..", message[position:end])
            if end >= size:
                smtp.send(chunk + terminator + (b"QUIT\r\n" if quit_after else b""))
                return
            smtp.send(chunk)
            position = end
