# -*- coding: utf-8 -*-
"""A small SMTP receiver on 127.0.0.1 for ``outbound-email demo``, built on aiosmtpd.

It keeps every message it accepts in memory; it relays nothing and checks no
login. aiosmtpd does the SMTP (dot-unstuffing, size limit, command checks).

    with LocalSmtpServer() as server:
        ... send to 127.0.0.1:server.port ...
        server.messages[0].data
"""

import logging
import threading
from dataclasses import dataclass
from typing import List

from aiosmtpd.controller import Controller

MAX_MESSAGE_SIZE = 50 * 1024 * 1024     # more than the app's default max_message_size (25 MiB)
# aiosmtpd logs each connection at INFO; `outbound-email demo -v` is about the app's side of the conversation
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: List[str]
    data: bytes          # the message as the client sent it, dot-unstuffed, CRLF line ends


class _KeepingHandler:
    """aiosmtpd handler: keeps each message in arrival order."""

    def __init__(self):
        self.messages = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.messages.append(ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos),
                                                 envelope.original_content))
            count = len(self.messages)
        return "250 2.0.0 OK: message {0} kept".format(count)


class _FreePortController(Controller):
    """aiosmtpd's Controller listening on a port the OS picks (port 0), so two demos never collide.

    Controller checks readiness by connecting to ``self.port``; with port 0 that
    must be the port actually bound, which is known once the server listens.
    """

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class LocalSmtpServer:
    """Context manager: an SMTP receiver on a free port of 127.0.0.1, served from a background thread."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self._handler = _KeepingHandler()
        # server_hostname given: aiosmtpd would otherwise look up this machine's FQDN (a DNS query)
        self._controller = _FreePortController(self._handler, hostname=host, port=0, server_hostname=host,
                                               ident="fn_outbound_email demo receiver",
                                               data_size_limit=MAX_MESSAGE_SIZE)

    @property
    def port(self):
        return self._controller.port

    @property
    def messages(self):
        with self._handler._lock:
            return list(self._handler.messages)

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc_info):
        self._controller.stop()
