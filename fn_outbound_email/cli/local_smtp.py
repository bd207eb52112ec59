# -*- coding: utf-8 -*-
"""A small SMTP receiver on 127.0.0.1 for ``outbound-email demo``.

Standard library only (the app must not need a test server at run time).
It speaks enough SMTP for ``smtplib`` and the app's transport: EHLO/HELO,
MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP, QUIT. It keeps every
message it accepts in memory; it relays nothing and checks no login.

    with LocalSmtpServer() as server:
        ... send to 127.0.0.1:server.port ...
        server.messages[0].data
"""

import re
import socketserver
import threading
from dataclasses import dataclass
from typing import List

from fn_outbound_email.cli.common import BackgroundServer

MAX_MESSAGE_SIZE = 50 * 1024 * 1024     # more than the app's default max_message_size (25 MiB)
MAX_COMMAND_LINE = 2048                 # RFC 5321 allows 512; leave room for ESMTP parameters
SESSION_TIMEOUT_SECONDS = 60            # a stalled client cannot keep the demo waiting for ever

_MAIL_FROM = re.compile(r"^FROM:\s*<([^<>]*)>(?:\s+.*)?$", re.IGNORECASE)
_RCPT_TO = re.compile(r"^TO:\s*<([^<>]+)>(?:\s+.*)?$", re.IGNORECASE)


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: List[str]
    data: bytes          # the message as the client sent it, dot-unstuffed, CRLF line ends


class _SmtpSession(socketserver.StreamRequestHandler):
    """One client connection: a line-by-line SMTP conversation."""

    timeout = SESSION_TIMEOUT_SECONDS

    def setup(self):
        super().setup()
        self.greeted = False
        self.reset_transaction()

    def reset_transaction(self):
        self.mail_from = None
        self.rcpt_tos = []

    def reply(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 {0} fn_outbound_email demo receiver ready".format(self.server.hostname))
        while True:
            line = self.rfile.readline(MAX_COMMAND_LINE + 1)
            if not line:
                return
            if len(line) > MAX_COMMAND_LINE:
                self.reply("500 5.5.2 Line too long")
                return
            verb, _, argument = line.decode("ascii", "replace").strip().partition(" ")
            handler = getattr(self, "smtp_" + verb.upper(), None) if verb.isalpha() else None
            if handler is None:
                self.reply("502 5.5.1 Command not implemented")
            elif handler(argument.strip()) is False:
                return

    # --- commands (return False to end the session) ------------------------------------------------------
    def smtp_EHLO(self, argument):
        self.greeted = True
        self.reset_transaction()
        self.reply("250-{0} hello {1}".format(self.server.hostname, argument or "client"))
        self.reply("250-8BITMIME")
        self.reply("250-SIZE {0}".format(MAX_MESSAGE_SIZE))
        self.reply("250 HELP")

    def smtp_HELO(self, argument):
        self.greeted = True
        self.reset_transaction()
        self.reply("250 {0} hello {1}".format(self.server.hostname, argument or "client"))

    def smtp_MAIL(self, argument):
        if not self.greeted:
            return self.reply("503 5.5.1 Say EHLO first")
        if self.mail_from is not None:
            return self.reply("503 5.5.1 Sender already given")
        match = _MAIL_FROM.match(argument)
        if not match:
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        self.mail_from = match.group(1)
        self.reply("250 2.1.0 OK")

    def smtp_RCPT(self, argument):
        if self.mail_from is None:
            return self.reply("503 5.5.1 Need MAIL first")
        match = _RCPT_TO.match(argument)
        if not match:
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        self.rcpt_tos.append(match.group(1))
        self.reply("250 2.1.5 OK")

    def smtp_DATA(self, argument):
        if not self.rcpt_tos:
            return self.reply("503 5.5.1 Need RCPT first")
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        data, too_big = self.read_data()
        if data is None:
            return False                      # the client went away in the middle of the message
        if too_big:
            self.reply("552 5.3.4 Message larger than {0} bytes".format(MAX_MESSAGE_SIZE))
        else:
            self.server.keep(ReceivedMessage(self.mail_from, list(self.rcpt_tos), data))
            self.reply("250 2.0.0 OK: message {0} kept".format(len(self.server.messages)))
        self.reset_transaction()

    def smtp_RSET(self, argument):
        self.reset_transaction()
        self.reply("250 2.0.0 OK")

    def smtp_NOOP(self, argument):
        self.reply("250 2.0.0 OK")

    def smtp_QUIT(self, argument):
        self.reply("221 2.0.0 Bye")
        return False

    def read_data(self):
        """The message lines up to the lone dot, unstuffed; (None, False) when the connection drops."""
        lines, size, too_big = [], 0, False
        while True:
            line = self.rfile.readline(MAX_MESSAGE_SIZE + 1)
            if not line:
                return None, False
            if line in (b".\r\n", b".\n"):
                return b"".join(lines), too_big
            if line.startswith(b"."):
                line = line[1:]               # RFC 5321 4.5.2: the client doubled leading dots
            size += len(line)
            if size > MAX_MESSAGE_SIZE:
                too_big = True                # keep reading to the end, but keep nothing
                lines = []
            elif not too_big:
                lines.append(line)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address):
        super().__init__(address, _SmtpSession)
        self.hostname = address[0]
        self.messages = []
        self._lock = threading.Lock()

    def keep(self, message):
        with self._lock:
            self.messages.append(message)


class LocalSmtpServer(BackgroundServer):
    """Context manager: an SMTP receiver on a free port of 127.0.0.1, served from a background thread."""

    def __init__(self, host="127.0.0.1"):
        super().__init__(_Server((host, 0)), name="demo-smtp")      # port 0: the OS picks a free one
        self.host = host

    @property
    def messages(self):
        return list(self.server.messages)
