# -*- coding: utf-8 -*-
"""The SMTP session: smtplib's client with one deadline per session and bounded replies.

smtplib applies its timeout to every single socket read and reads any number of reply lines, so a server
that drips or floods could hold a send forever. The session here sets the socket timeout to the time left
before every read and write and caps every reply in lines and bytes. Also here: the EHLO name, and the
ways a session ends (QUIT while in step, RSET after a refused transaction).
"""

import functools
import re
import smtplib
import socket
import ssl
import time

from fn_outbound_email.lib.delivery.smtp.pool import QUIT_SECONDS, close_session

MAX_REPLY_LINES = 100          # a real EHLO reply has about 10 lines
MAX_REPLY_BYTES = 64 * 1024
MAX_REPLY_LINE_BYTES = 8192     # smtplib's limit per line
# the first bytes of a TLS record: content type handshake/alert/... then major version 3
_TLS_RECORD_START = re.compile(rb"[\x14-\x17]\x03")


def abandon_transaction(smtp, code):
    """RSET after a refusal, so its reply stays the reason; after 421 the server is closing, so just close."""
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def quit_session(smtp):
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


class Progress:
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


class BoundedSession:
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
        self.opened_at = time.monotonic()      # the pool reuses a session up to an age (pool.MAX_SESSION_SECONDS)
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

    def has_unread_input(self):
        """Whether the server sent anything no command asked for (buffered here, decrypted and waiting in TLS, or
        on the socket), or closed the connection: an idle session must have nothing to read, else a reply would
        be taken for the answer to the next command."""
        sock = self.sock
        if self._buffer or sock is None:
            return True
        # a read that does not wait (not select(), which fails for descriptors past 1023): nothing there, or (TLS)
        # only records without data, such as a session ticket, raise; a byte is consumed, but then the session is
        # not used again anyway
        sock.settimeout(0)
        try:
            sock.recv(1)
            return True             # a byte nobody asked for, or b"": the server closed the connection
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:             # reset by the server
            return True

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


class Session(BoundedSession, smtplib.SMTP):
    pass


class SslSession(BoundedSession, smtplib.SMTP_SSL):
    pass
