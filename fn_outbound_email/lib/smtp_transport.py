# -*- coding: utf-8 -*-
"""The SMTP conversation: connect (plain, STARTTLS or implicit TLS), authenticate, deliver.

Each SMTP session has one deadline, ``smtp_conn_timeout`` from its start (the message data gets more time
by its size), and every reply is capped in lines and bytes, so a server that drips or floods cannot hold
a send. Credentials never cross the network in clear unless app.config says
``smtp_allow_plaintext_auth = true``. Transient failures (connection problems, 4xx replies, recipients
refused with 4xx) are retried ``smtp_retries`` times with backoff; once the message data has been sent
the outcome may be a delivered mail, so a failure from then on is reported as uncertain and never retried.

Round trips are what a user waits for: PIPELINING (RFC 2920) and CHUNKING (RFC 3030) are used when the
server offers them, and a session is kept in the pool (lib/smtp_pool.py) for the next send with the same
settings unless ``smtp_connection_reuse = false``.
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
from fn_outbound_email.lib.smtp_pool import POOL, QUIT_SECONDS, close_session

LOG = logging.getLogger(__name__)

BACKOFF_SECONDS = 2.0          # first retry after 2 s, then 4 s, 8 s ...
DATA_CHUNK_BYTES = 1 << 20     # the message is sent in pieces of about this size
# with PIPELINING and CHUNKING a message up to this size goes out in the same write as MAIL FROM and RCPT TO
# (BDAT ... LAST): the whole transaction in one round trip. A bigger one waits for the envelope's answers
# first, so a refused sender or recipient list does not cost sending megabytes for nothing.
INLINE_MESSAGE_BYTES = 256 * 1024
# the message data gets smtp_conn_timeout plus the time it needs at this (slow uplink) rate
DATA_MIN_BYTES_PER_SECOND = 64 * 1024
MAX_REPLY_LINES = 100          # a real EHLO reply has about 10 lines
MAX_REPLY_BYTES = 64 * 1024
MAX_REPLY_LINE_BYTES = 8192     # smtplib's limit per line
_LINE_STARTING_WITH_DOT = re.compile(rb"(?m)^\.")
# the first bytes of a TLS record: content type handshake/alert/... then major version 3
_TLS_RECORD_START = re.compile(rb"[\x14-\x17]\x03")
# OpenSSL's reasons when the other side does not speak TLS at all (a plain SMTP greeting instead of a ServerHello)
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                    "HTTP_REQUEST")
_HOSTNAME_MISMATCH_CODES = (62, 64)    # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


@dataclass
class DeliveryReport:
    accepted: List[str] = field(default_factory=list)
    refused: Dict[str, str] = field(default_factory=dict)


def _reply_text(code, message):
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return "{0} {1}".format(code, " ".join(str(message).split())).strip()


def _transient(code):
    return 400 <= code < 500


def _abandon_transaction(smtp, code):
    """RSET after a refusal, so its reply stays the reason; after 421 the server is closing, so just close."""
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _step_text(progress):
    """', waiting for the answer to EHLO' and the like: the step a session hung on."""
    if progress is None:
        return ""
    if progress.step == "STARTTLS":
        return ", at STARTTLS (its answer or the TLS handshake)"
    if progress.step:
        return ", waiting for the answer to {0}".format(progress.step)
    if not progress.reading:
        return ", opening the connection"
    return ""


def _quit(smtp):
    """QUIT (with a short wait of its own) while the conversation is in step; after a broken exchange, close."""
    close_session(smtp, min(smtp.timeout_seconds, QUIT_SECONDS))


@functools.lru_cache(maxsize=None)
def ehlo_name():
    """The name this host gives in EHLO, as smtplib works it out, once per process: smtplib looks the host
    name up (a reverse DNS query where /etc/hosts does not have it) for every connection otherwise."""
    return smtplib.SMTP().local_hostname        # no server given: nothing is connected


class ReplyTooLong(smtplib.SMTPException):
    """The server's reply passed MAX_REPLY_LINES or MAX_REPLY_BYTES."""


class TlsRecordReply(smtplib.SMTPException):
    """A TLS record arrived where a plain SMTP reply was expected: the port speaks implicit TLS."""


class _Progress:
    """How far a session got, for the hints of a failure (the session object may never have been returned)."""

    def __init__(self):
        self.reading = False         # the TCP connection is up and a reply was awaited
        self.bytes_received = 0
        self.step = None             # the last SMTP command sent (its verb only), which a timeout names


# the verbs a timeout may name; anything else put on the wire (an AUTH continuation: credentials) never is
_STEP_VERBS = frozenset(("EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT"))


def note_step(progress, command):
    """Record the verb of ``command`` (a str or bytes line) as the session's step, when it is an SMTP verb."""
    if progress is None:
        return
    if isinstance(command, bytes):
        command = command.decode("ascii", "replace")
    verb = str(command).split(" ", 1)[0].split(":", 1)[0].strip().upper()
    if verb in _STEP_VERBS:
        progress.step = "MAIL FROM" if verb == "MAIL" else "RCPT TO" if verb == "RCPT" else verb


class _BoundedSession:
    """smtplib's SMTP with one deadline for the session and capped replies (mixed into SMTP and SMTP_SSL).

    smtplib applies its timeout to every single socket read, so a server dripping one byte a second holds it
    forever, and it reads any number of reply lines. Here the socket timeout is set to the time left before
    every read and write (``deadline``, time.monotonic() based), and replies are read by ``getreply`` below,
    which also counts lines and bytes.
    """

    def __init__(self, deadline, progress, *args, **kwargs):
        self.deadline = deadline
        self.progress = progress
        self.timeout_seconds = kwargs.get("timeout")
        self._buffer = b""
        super().__init__(*args, **kwargs)

    def _time_left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left

    def connect(self, host="localhost", port=0, source_address=None):
        self.timeout = self._time_left()        # TCP connect and (SMTP_SSL) the TLS handshake
        self._buffer = b""
        return super().connect(host, port, source_address)

    def send(self, s):
        if self.sock:
            self.sock.settimeout(self._time_left())   # sendall's timeout covers the whole write (Python >= 3.5)
        return super().send(s)

    def putcmd(self, cmd, args=""):
        note_step(self.progress, cmd)
        return super().putcmd(cmd, args)

    def starttls(self, *args, **kwargs):
        # the handshake runs with the socket timeout the reply to STARTTLS left: the time left then
        result = super().starttls(*args, **kwargs)
        # anything the server sent in clear after its 220 must not pass for a reply inside TLS (command injection)
        self._buffer = b""
        return result

    def _read_line(self, first):
        self.progress.reading = True
        while True:
            if first and _TLS_RECORD_START.match(self._buffer):
                raise TlsRecordReply("a TLS record instead of an SMTP reply")
            end = self._buffer.find(b"\n", 0, MAX_REPLY_LINE_BYTES + 1)
            if end >= 0:
                line, self._buffer = self._buffer[:end + 1], self._buffer[end + 1:]
                return line
            if len(self._buffer) > MAX_REPLY_LINE_BYTES:
                raise smtplib.SMTPResponseException(500, "Line too long.")
            if self.sock is None:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            self.sock.settimeout(self._time_left())
            chunk = self.sock.recv(8192)
            if not chunk:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            self.progress.bytes_received += len(chunk)
            self._buffer += chunk

    def getreply(self):
        """smtplib's getreply (same result and errors) reading from our deadline-bound buffer, with caps."""
        lines, size = [], 0
        try:
            while True:
                line = self._read_line(first=not lines)
                size += len(line)
                if len(lines) >= MAX_REPLY_LINES:
                    raise ReplyTooLong("a reply of more than {0} lines".format(MAX_REPLY_LINES))
                if size > MAX_REPLY_BYTES:
                    raise ReplyTooLong("a reply of more than {0} bytes".format(MAX_REPLY_BYTES))
                lines.append(line[4:].strip(b" \t\r\n"))
                try:
                    code = int(line[:3])
                except ValueError:
                    code = -1
                    break
                if line[3:4] != b"-":
                    break
        except Exception:
            self.close()            # a broken exchange: nothing more is said on this connection
            raise
        return code, b"\n".join(lines)


class _Session(_BoundedSession, smtplib.SMTP):
    pass


class _SslSession(_BoundedSession, smtplib.SMTP_SSL):
    pass


class PasswordAuthenticator:
    """One AUTH exchange with the configured password: PLAIN when offered, else LOGIN.

    smtplib's login() tries every mechanism in turn, so a wrong password counts as two (or three) failures
    on the server, pushing the account toward lockout; ``smtp.auth`` runs exactly one.
    """

    def __init__(self, user, password):
        self._user = user
        self._password = password

    def identity(self):
        """Who logs in, for telling pooled sessions apart (a digest: the password itself stays here)."""
        return "password", self._user, hashlib.sha256((self._password or "").encode("utf-8")).hexdigest()

    def authenticate(self, smtp):
        if not smtp.has_extn("auth"):
            raise DeliveryError("The SMTP server does not offer AUTH{0}; check smtp_ssl_mode (many servers offer "
                                "AUTH only after STARTTLS) or remove smtp_user".format(
                                    "" if smtp.does_esmtp else " (no ESMTP)"))
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in offered:
            mechanism, response = "PLAIN", self._plain
        elif "LOGIN" in offered:
            mechanism, response = "LOGIN", self._login
        else:
            raise DeliveryError("The SMTP server offers AUTH {0} but neither PLAIN nor LOGIN, so smtp_password cannot "
                                "be used; configure OAuth2 (client_id ...) if it offers XOAUTH2".format(
                                    " ".join(offered) or "(none)"))
        try:
            smtp.auth(mechanism, response)
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError("The SMTP server refused the login of user '{0}' (AUTH {1}): {2}{3}".format(
                self._user, mechanism, _reply_text(err.smtp_code, err.smtp_error),
                "" if _transient(err.smtp_code) else "; check smtp_user and smtp_password"),
                transient=_transient(err.smtp_code), smtp_code=err.smtp_code)
        except UnicodeEncodeError:
            # smtplib sends AUTH responses as ASCII only
            raise DeliveryError("smtp_user or smtp_password has non-ASCII characters, which AUTH {0} cannot send "
                                "here; use an ASCII password".format(mechanism))

    def _plain(self, challenge=None):
        return "\0{0}\0{1}".format(self._user, self._password)

    def _login(self, challenge=None):
        # AUTH LOGIN: the initial response is the user name, the answer to the (password) challenge the password
        return self._user if challenge is None else self._password


def tls_context(ssl_verify):
    """Verification as app.config says: system CAs, a CA bundle, or (warned) none."""
    if ssl_verify is False:
        LOG.warning("smtp_ssl_cafile = false: the SMTP server's TLS certificate is NOT verified")
        return _unverified_context()
    if ssl_verify is True:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ssl_verify)
    except ssl.SSLError as err:
        raise DeliveryError("smtp_ssl_cafile = '{0}' holds no CA certificate in PEM form ({1}); give the PEM bundle "
                            "of the CA that issued the SMTP server's certificate".format(ssl_verify,
                                                                                     err.reason or err))


def _unverified_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def certificate_names(der):
    """The DNS names and IP addresses a certificate (DER) is issued for; its common name when it has no SAN."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName) + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return names or [attribute.value for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


class SmtpTransport:
    """Connects to the configured server and delivers prepared messages."""

    def __init__(self, settings, authenticator=None):
        self._settings = settings
        self._authenticator = authenticator

    @property
    def server(self):
        return "{0}:{1}".format(self._settings.smtp_server, self._settings.smtp_port)

    # --- public ------------------------------------------------------------------------------------
    def deliver(self, envelope_from, recipients, message, smtputf8=False):
        """Send ``message`` (bytes) to ``recipients``; retry transient failures; return a DeliveryReport.

        ``smtputf8``: the envelope or headers are internationalized (RFC 6531); the server must offer SMTPUTF8.
        Recipients refused with 4xx are retried in a new session (after the backoff: a greylisting server wants
        the wait, and an idle session would hold the server and our deadline); accepted ones never get it twice.
        """
        report = DeliveryReport()
        pending = list(recipients)
        attempt = 0
        while True:
            try:
                accepted, refused = self._deliver_once(envelope_from, pending, message, smtputf8)
            except MailError as err:     # DeliveryError, or the authenticator's own (OAuth2Error, never transient)
                retry = getattr(err, "transient", False) and not getattr(err, "uncertain", False)
                if retry and attempt < self._settings.retries:
                    attempt += 1
                    self._back_off(attempt, err)
                    continue
                if not report.accepted:
                    raise
                # the message already reached some recipients: the rest are reported, the send is not a failure
                report.refused.update((recipient, str(err)) for recipient in pending)
                return report
            report.accepted.extend(accepted)
            retry = [recipient for recipient, (code, _) in refused.items() if _transient(code)] \
                if attempt < self._settings.retries else []
            report.refused.update((recipient, text) for recipient, (_, text) in refused.items()
                                  if recipient not in retry)
            if retry:
                attempt += 1
                pending = retry
                self._back_off(attempt, "{0} recipient(s) refused for now: {1}".format(
                    len(retry), "; ".join("{0}: {1}".format(r, refused[r][1]) for r in retry)))
                continue
            if not report.accepted:
                raise DeliveryError("The SMTP server refused every recipient: {0}".format(
                    "; ".join("{0}: {1}".format(k, v) for k, v in report.refused.items())),
                    transient=all(_transient(code) for code, _ in refused.values()))
            return report

    def _deliver_once(self, envelope_from, recipients, message, smtputf8):
        """One transaction on a pooled session (or a fresh one); the session goes back to the pool after it."""
        reuse = self._settings.connection_reuse
        smtp = (reuse and self._pooled_session()) or self._connect()
        try:
            result = self._transaction(smtp, envelope_from, recipients, message, smtputf8, quit_after=not reuse)
        except BaseException:
            _quit(smtp)
            raise
        if smtp.sock is None:           # the QUIT went with the message
            pass
        elif reuse:
            POOL.give_back(self._pool_key(), smtp, self._settings.idle_seconds)
        else:
            _quit(smtp)
        return result

    def _pooled_session(self):
        """An idle session of these settings that still answers RSET (the reset between two messages), or None.

        RSET costs one round trip and is not pipelined with the transaction: a session the server dropped
        while it was idle shows here, before MAIL FROM, and is replaced with a fresh one, so no message is ever
        sent twice because a reused session died mid-transaction.
        """
        while True:
            smtp = POOL.take(self._pool_key())
            if smtp is None:
                return None
            smtp.deadline = time.monotonic() + self._settings.timeout      # a new deadline for this use
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
        identity = getattr(self._authenticator, "identity", None)
        return (settings.smtp_server, settings.smtp_port, settings.ssl_mode, settings.ssl_verify,
                identity() if identity else None)

    def _back_off(self, attempt, reason):
        delay = BACKOFF_SECONDS * (2 ** (attempt - 1))
        LOG.warning("Transient SMTP failure (%s); retry %s of %s in %s s",
                    reason, attempt, self._settings.retries, "{0:.1f}".format(delay))
        time.sleep(delay)

    def check_connection(self):
        """Connect, negotiate TLS, authenticate, NOOP and QUIT: what selftest needs. Sends nothing."""
        with self.session() as smtp:
            try:
                code, reply = smtp.noop()
            except Exception as err:
                smtp.close()
                raise self._connection_error(err, "talking to", smtp.progress)
            if code != 250:
                raise DeliveryError("The SMTP server answered NOOP with {0}".format(_reply_text(code, reply)),
                                    smtp_code=code)

    @contextmanager
    def session(self):
        """A connected, TLS-negotiated, authenticated SMTP session; QUIT on exit while the exchange is in step
        (every failure that breaks it closes the connection first)."""
        smtp = self._connect()
        try:
            yield smtp
        finally:
            _quit(smtp)

    # --- connection -----------------------------------------------------------------------------------
    def _open(self, context, progress):
        """Connected and greeted (TLS negotiated in ssl mode), deadline set; raises what smtplib raises."""
        settings = self._settings
        deadline = time.monotonic() + settings.timeout
        # host given to the constructor (which connects): smtplib keeps it for TLS server_hostname checks
        if settings.ssl_mode == "ssl":
            return _SslSession(deadline, progress, settings.smtp_server, settings.smtp_port,
                               local_hostname=ehlo_name(), timeout=settings.timeout, context=context)
        return _Session(deadline, progress, settings.smtp_server, settings.smtp_port, local_hostname=ehlo_name(),
                        timeout=settings.timeout)

    def _connect(self):
        settings = self._settings
        progress = _Progress()
        context = tls_context(settings.ssl_verify) if settings.ssl_mode != "none" or self._authenticator else None
        try:
            smtp = self._open(context, progress)
        except smtplib.SMTPConnectError as err:
            raise DeliveryError("The SMTP server {0} greeted with {1}".format(
                self.server, _reply_text(err.smtp_code, err.smtp_error)),
                transient=_transient(err.smtp_code), smtp_code=err.smtp_code)
        except Exception as err:
            raise self._connection_error(err, "connecting to", progress)
        try:
            # the message and its final dot are two writes with no reply between: with Nagle on, the dot waits
            # for the server's delayed ACK (measured: 44 ms per message on loopback, 1.2 ms without)
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo_or_helo_if_needed()
            if self._needs_starttls(smtp):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._authenticator is not None:
                self._authenticator.authenticate(smtp)
            return smtp
        except MailError:              # DeliveryError, or the authenticator's own (OAuth2Error): reason kept as is
            _quit(smtp)
            raise
        except Exception as err:
            smtp.close()
            raise self._connection_error(err, "talking to", progress)

    def _needs_starttls(self, smtp):
        """STARTTLS when configured, and (smtp_ssl_mode None) before sending credentials; raises when the server
        cannot give the protection required."""
        settings = self._settings
        if settings.ssl_mode == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError("The SMTP server {0} does not offer STARTTLS; set smtp_ssl_mode to ssl (port "
                                    "465) or None".format(self.server))
            return True
        if settings.ssl_mode != "none" or self._authenticator is None:
            return False
        if smtp.has_extn("starttls"):
            LOG.info("smtp_ssl_mode is None but credentials are configured: upgrading the connection to %s with "
                     "STARTTLS before AUTH", self.server)
            return True
        if settings.allow_plaintext_auth:
            LOG.warning("The SMTP server %s does not offer STARTTLS: the credentials of smtp_user cross the network "
                        "in clear (smtp_allow_plaintext_auth = true)", self.server)
            return False
        raise DeliveryError("The SMTP server {0} does not offer STARTTLS, so the credentials would cross the network "
                            "in clear; nothing was sent. Set smtp_ssl_mode = ssl (implicit TLS, usually port 465) or "
                            "starttls if the server has TLS on another port, or, on a trusted network only, "
                            "smtp_allow_plaintext_auth = true".format(self.server))

    def _connection_error(self, err, doing, progress=None):
        server, settings = self.server, self._settings
        if isinstance(err, DeliveryError):
            return err
        if isinstance(err, ssl.SSLCertVerificationError):
            if err.verify_code in _HOSTNAME_MISMATCH_CODES:
                return self._name_mismatch_error(err)
            return DeliveryError("The TLS certificate of the SMTP server {0} is not trusted ({1}); set "
                                 "smtp_ssl_cafile to the CA bundle that issued it".format(
                                     server, err.verify_message or err.reason))
        if isinstance(err, ssl.SSLError):
            if settings.ssl_mode == "ssl" and err.reason in _NOT_TLS_REASONS:
                return DeliveryError("The SMTP server {0} answered the TLS handshake in plain text ({1}), so port {2} "
                                     "is not an implicit-TLS port; set smtp_ssl_mode = starttls (usually port 587) or "
                                     "None (port 25)".format(server, err.reason, settings.smtp_port))
            return DeliveryError("TLS with the SMTP server {0} failed: {1}; check smtp_ssl_mode (ssl for port 465, "
                                 "starttls for 587) ".format(server, err.reason or err).strip())
        if isinstance(err, TlsRecordReply):
            return DeliveryError("The SMTP server {0} answered in TLS, so port {1} expects implicit TLS; set "
                                 "smtp_ssl_mode = ssl (usually port 465)".format(server, settings.smtp_port))
        if isinstance(err, ReplyTooLong):
            return DeliveryError("The SMTP server {0} sent {1}; it is not a working SMTP server (check smtp_server "
                                 "and smtp_port)".format(server, err))
        if isinstance(err, socket.gaierror):
            return DeliveryError("The SMTP server name '{0}' cannot be resolved ({1}); check smtp_server".format(
                settings.smtp_server, err.strerror or err))
        if isinstance(err, (socket.timeout, TimeoutError)) or (
                isinstance(err, smtplib.SMTPServerDisconnected) and "timed out" in str(err)):
            if settings.ssl_mode != "ssl" and progress is not None and progress.reading and \
                    progress.bytes_received == 0:
                # an implicit-TLS server waits for our TLS handshake and never greets a plain client
                return DeliveryError("Timed out after {0:g} s waiting for the greeting of the SMTP server {1}: it "
                                     "accepted the connection but sent nothing. If port {2} expects implicit TLS, set "
                                     "smtp_ssl_mode = ssl (usually port 465); else raise smtp_conn_timeout".format(
                                         settings.timeout, server, settings.smtp_port), transient=True)
            return DeliveryError("Timed out after {0:g} s {1} the SMTP server {2}{3}; check smtp_server, smtp_port "
                                 "and firewalls, or raise smtp_conn_timeout".format(
                                     settings.timeout, doing, server, _step_text(progress)), transient=True)
        if isinstance(err, ConnectionRefusedError):
            return DeliveryError("The SMTP server {0} refused the connection; check smtp_server and "
                                 "smtp_port{1}".format(server, self._port_hint()), transient=True)
        if isinstance(err, smtplib.SMTPServerDisconnected):
            return DeliveryError("The SMTP server {0} closed the connection ({1})".format(server, err), transient=True)
        if isinstance(err, smtplib.SMTPResponseException):
            return DeliveryError("The SMTP server {0} answered {1}".format(
                server, _reply_text(err.smtp_code, err.smtp_error)),
                transient=_transient(err.smtp_code), smtp_code=err.smtp_code)
        if isinstance(err, OSError):
            return DeliveryError("Network error {0} the SMTP server {1}: {2}".format(doing, server, err),
                                 transient=True)
        return DeliveryError("SMTP error {0} {1}: {2}".format(doing, server, err))

    def _port_hint(self):
        """For a refused connection: the port usually serving the configured TLS mode, when another is set."""
        from fn_outbound_email.lib.settings import DEFAULT_PORTS
        settings = self._settings
        usual = DEFAULT_PORTS[settings.ssl_mode]
        if settings.smtp_port == usual or settings.smtp_port not in DEFAULT_PORTS.values():
            return ""
        return " (smtp_ssl_mode {0} is usually served on port {1}, not {2}: set smtp_port = {1})".format(
            settings.ssl_mode, usual, settings.smtp_port)

    def _name_mismatch_error(self, err):
        names = self._presented_names()
        if not names:
            return DeliveryError("The TLS certificate of the SMTP server {0} is not issued for '{1}' ({2}); set "
                                 "smtp_server to a name the certificate is issued for".format(
                                     self.server, self._settings.smtp_server, err.verify_message))
        return DeliveryError("The TLS certificate of the SMTP server {0} is issued for {1}, not for '{2}'; set "
                             "smtp_server to {3} (resolving to this server)".format(
                                 self.server, ", ".join(names), self._settings.smtp_server,
                                 "that name" if len(names) == 1 else "one of those names"))

    def _presented_names(self):
        """The names in the server's certificate, read in a second handshake that checks nothing and is followed
        by QUIT only: a handshake that failed its host-name check does not expose the certificate."""
        context = _unverified_context()
        try:
            smtp = self._open(context, _Progress())
            try:
                if self._settings.ssl_mode != "ssl":
                    smtp.ehlo()
                    smtp.starttls(context=context)
                der = smtp.sock.getpeercert(binary_form=True)
            finally:
                _quit(smtp)
            return certificate_names(der)
        except Exception as err:            # only a hint: the error stays the host-name mismatch
            LOG.debug("Could not read the SMTP server's certificate names: %s", err)
            return []

    # --- one mail transaction -------------------------------------------------------------------------
    def _transaction(self, smtp, envelope_from, recipients, message, smtputf8=False, quit_after=True):
        """MAIL, RCPT for each recipient and, when any is accepted, the message; QUIT too when ``quit_after``.

        With PIPELINING (RFC 2920) the envelope goes in one write (MAIL, every RCPT, DATA) and the replies are
        read in order; the message's final dot and QUIT go in one write too. With CHUNKING (RFC 3030) the
        message goes as BDAT ... LAST (no 354 to wait for, no dot-stuffing), and with both a small message
        joins the envelope's write: one round trip for the whole transaction.
        Returns (accepted recipients, {refused recipient: (code, reason)}); raises DeliveryError for a failure
        of the whole transaction.
        """
        pipelining = smtp.has_extn("pipelining")
        chunking = smtp.has_extn("chunking")
        quit_with_message = b"QUIT\r\n" if pipelining and quit_after else b""
        try:
            options = self._mail_options(smtp, envelope_from, recipients, message, smtputf8)
            if pipelining and chunking and len(message) <= INLINE_MESSAGE_BYTES:
                return self._one_write_transaction(smtp, envelope_from, options, recipients, message, smtputf8,
                                                   quit_with_message)
            if pipelining:
                mail, rcpts, data = self._pipelined_envelope(smtp, envelope_from, options, recipients, smtputf8,
                                                             "" if chunking else "DATA")
            else:
                mail, rcpts, data = self._classic_envelope(smtp, envelope_from, options, recipients,
                                                           data_command=not chunking)
            accepted, refused = self._check_envelope(smtp, envelope_from, message, mail, rcpts, data,
                                                     expect_data=not chunking)
            if not accepted:
                return accepted, refused
        except DeliveryError:
            raise
        except Exception as err:
            smtp.close()
            raise self._connection_error(err, "sending to", smtp.progress)

        # from here on the server may have the message: failures are uncertain, never retried
        # the data gets a deadline of its own: a big message over a slow link needs longer than a command
        self._set_data_deadline(smtp, message)
        try:
            if chunking:
                self._send_bdat(smtp, message, quit_with_message)
            else:
                self._send_data(smtp, message, quit_with_message)
            code, reply = smtp.getreply()
        except Exception as err:
            smtp.close()
            raise self._uncertain(err)
        if quit_with_message:
            self._end_pipelined_session(smtp)
        self._check_message_reply(code, reply)
        return accepted, refused

    def _one_write_transaction(self, smtp, envelope_from, options, recipients, message, smtputf8, after):
        """PIPELINING and CHUNKING with a small message: MAIL, every RCPT, BDAT ... LAST, the message (and QUIT)
        in one write.

        RFC 3030 lets BDAT and its chunk be pipelined, and a server reads the chunk whatever it answers, so a
        refused sender or recipient list costs only the chunk's bytes (at most INLINE_MESSAGE_BYTES). The message
        is out with that first write, so a connection lost before the replies are read is an uncertain delivery.
        """
        self._set_data_deadline(smtp, message)
        try:
            mail, rcpts, last = self._pipelined_envelope(smtp, envelope_from, options, recipients, smtputf8,
                                                         "BDAT {0} LAST".format(len(message)), message + after)
        except Exception as err:
            smtp.close()
            raise self._uncertain(err)
        if after and last is not None:
            self._end_pipelined_session(smtp)
        # a refused sender or recipient list means the chunk was refused too (503): nothing was delivered
        accepted, refused = self._check_envelope(smtp, envelope_from, message, mail, rcpts, None, expect_data=False)
        if accepted:
            self._check_message_reply(*last)
        return accepted, refused

    def _set_data_deadline(self, smtp, message):
        smtp.deadline = time.monotonic() + self._settings.timeout + len(message) / DATA_MIN_BYTES_PER_SECOND

    def _uncertain(self, err):
        return DeliveryError("The connection to the SMTP server {0} failed after the message was sent ({1}); "
                             "delivery is uncertain, so it was not sent again: check the recipients' mailboxes "
                             "before resending".format(self.server, err), uncertain=True)

    @staticmethod
    def _check_message_reply(code, reply):
        if code != 250:
            raise DeliveryError("The SMTP server did not accept the message: {0}".format(_reply_text(code, reply)),
                                transient=_transient(code), smtp_code=code)

    @staticmethod
    def _classic_envelope(smtp, envelope_from, options, recipients, data_command=True):
        """MAIL, RCPT, DATA one at a time, each after the reply to the one before: ((code, reply) of MAIL,
        [(recipient, code, reply)], (code, reply) of DATA or None when it was not sent). Without
        ``data_command`` (the message goes as BDAT) the envelope ends after the RCPTs."""
        mail = smtp.mail(envelope_from, options)
        if mail[0] != 250:
            return mail, [], None
        rcpts = []
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            rcpts.append((recipient, code, reply))
            if code == 421:
                return mail, rcpts, None
        if not data_command or not any(code in (250, 251) for _, code, _ in rcpts):
            return mail, rcpts, None
        return mail, rcpts, smtp.docmd("DATA")

    @staticmethod
    def _pipelined_envelope(smtp, envelope_from, options, recipients, smtputf8, last_command="DATA", tail=b""):
        """MAIL, every RCPT and ``last_command`` (DATA, a BDAT, or none) in one write with ``tail`` after it,
        then their replies in order (as _classic_envelope returns; the last is that of ``last_command``).

        DATA or BDAT ends the group, the only place RFC 2920 allows DATA. AUTH is never part of a group: its
        outcome changes the session's state, which RFC 2920 section 3.1 asks a client to wait for, as for EHLO;
        it is paid once per session, and a pooled session does not pay it again.
        """
        lines = ["MAIL FROM:{0}{1}".format(smtplib.quoteaddr(envelope_from), "".join(" " + o for o in options))]
        lines += ["RCPT TO:{0}".format(smtplib.quoteaddr(recipient)) for recipient in recipients]
        if last_command:
            lines.append(last_command)
        if any("\r" in line or "\n" in line for line in lines):       # as smtplib's putcmd refuses
            raise ValueError("An envelope address contains a line break")
        smtp.send("".join(line + "\r\n" for line in lines).encode("utf-8" if smtputf8 else "ascii") + tail)
        note_step(getattr(smtp, "progress", None), lines[0])       # the replies come in order: MAIL FROM's first
        mail = smtp.getreply()
        rcpts = []
        if mail[0] == 421:
            return mail, rcpts, None              # the server is closing: no more replies come
        for recipient in recipients:
            code, reply = smtp.getreply()
            rcpts.append((recipient, code, reply))
            if code == 421:
                return mail, rcpts, None
        return mail, rcpts, smtp.getreply() if last_command else None

    def _check_envelope(self, smtp, envelope_from, message, mail, rcpts, data, expect_data=True):
        """Raise for a refused sender or DATA; (accepted, refused) otherwise, the transaction abandoned (RSET)
        when no recipient was accepted. Without ``expect_data`` (BDAT) there is no DATA reply to check."""
        if data is not None and data[0] == 354 and (mail[0] != 250 or not any(c in (250, 251) for _, c, _ in rcpts)):
            # a server that invites the data of a transaction it refused gets an empty message, which it must refuse
            smtp.send(b".\r\n")
            data = smtp.getreply()
        code, reply = mail
        if code != 250:
            _abandon_transaction(smtp, code)
            if code == 552:
                raise DeliveryError("The SMTP server refused the message of {0} bytes as too big at MAIL FROM: "
                                    "{1}".format(len(message), _reply_text(code, reply)), smtp_code=code)
            raise DeliveryError("The SMTP server refused the sender {0}: {1}".format(
                envelope_from, _reply_text(code, reply)), transient=_transient(code), smtp_code=code)
        accepted, refused = [], {}
        for recipient, code, reply in rcpts:
            if code in (250, 251):
                accepted.append(recipient)
            elif code == 421:
                _abandon_transaction(smtp, code)
                raise DeliveryError("The SMTP server {0} is closing the connection: {1}".format(
                    self.server, _reply_text(code, reply)), transient=True, smtp_code=code)
            else:
                refused[recipient] = (code, _reply_text(code, reply))
        if not accepted:
            _abandon_transaction(smtp, data[0] if data else code)
            return accepted, refused
        if not expect_data:
            return accepted, refused
        code, reply = data
        if code != 354:
            _abandon_transaction(smtp, code)
            raise DeliveryError("The SMTP server refused DATA: {0}".format(_reply_text(code, reply)),
                                transient=_transient(code), smtp_code=code)
        return accepted, refused

    @staticmethod
    def _end_pipelined_session(smtp):
        """Read the reply to the QUIT sent with the final dot and close; the outcome is already known."""
        try:
            smtp.getreply()
        except (smtplib.SMTPException, OSError):
            pass
        smtp.close()

    def _mail_options(self, smtp, envelope_from, recipients, message, smtputf8):
        """The MAIL FROM parameters (SIZE, SMTPUTF8, BODY); raises when the server cannot take the message."""
        options = []
        if smtp.has_extn("size"):
            limit = smtp.esmtp_features.get("size", "").strip()
            if limit.isdigit() and 0 < int(limit) < len(message):          # SIZE 0: no fixed limit
                raise DeliveryError("The message is {0} bytes, more than the {1} bytes the SMTP server {2} accepts "
                                    "(its EHLO SIZE); send fewer or smaller attachments".format(
                                        len(message), limit, self.server))
            options.append("SIZE={0}".format(len(message)))
        international = [address for address in [envelope_from] + list(recipients) if not address.isascii()]
        if smtputf8 or international:
            if not smtp.has_extn("smtputf8"):
                raise DeliveryError("The SMTP server {0} does not offer SMTPUTF8, which {1} need(s); use ASCII "
                                    "addresses or a server that supports internationalized mail (RFC 6531)".format(
                                        self.server, ", ".join(international) or "the internationalized headers"))
            options.append("SMTPUTF8")
            if not message.isascii() and smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        return options

    @staticmethod
    def _send_bdat(smtp, message, after=b""):
        """The message as one BDAT ... LAST chunk: exactly its octets, no dot-stuffing (RFC 3030), then ``after``."""
        smtp.send("BDAT {0} LAST\r\n".format(len(message)).encode("ascii"))
        for start in range(0, len(message), DATA_CHUNK_BYTES):
            end = start + DATA_CHUNK_BYTES
            smtp.send(message[start:end] + (after if end >= len(message) else b""))

    @staticmethod
    def _send_data(smtp, message, after=b""):
        """Send the message after DATA: dot-stuffed, in line-aligned chunks, the last one with the terminating dot
        and ``after`` (one write for a small message, so the server reads it in one go)."""
        position, size = 0, len(message)
        terminator = b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n"
        while True:
            end = message.find(b"\n", min(position + DATA_CHUNK_BYTES, size) - 1)
            end = size if end == -1 else end + 1
            chunk = _LINE_STARTING_WITH_DOT.sub(b"..", message[position:end])
            if end >= size:
                smtp.send(chunk + terminator + after)
                return
            smtp.send(chunk)
            position = end
