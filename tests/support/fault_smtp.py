# -*- coding: utf-8 -*-
"""An SMTP server that misbehaves on purpose: the failure tests' counterpart of tests/support/smtp_server.py.

It is the same aiosmtpd server on 127.0.0.1 (``SmtpTestServer``, ``RecordingHandler``) with scripted
faults at the greeting, at AUTH, at MAIL FROM, at RCPT TO and at the end of DATA: a reply of the test's
choosing (421, 451, 552 ...), a dropped connection, or a stall past the client's timeout. Recipients can be
refused with 550, and the EHLO reply can leave out STARTTLS or AUTH (or add PIPELINING).

Each fault applies to a number of transactions (``times``; None for every one), so "421 once, then
OK" is ``Fault("421 ...", times=1)``, after ``skip`` transactions that pass. The server counts connections,
keeps every message body that reached the end of DATA (``received``, answered or not) and the accepted ones
(``messages``), and logs the commands it was given (``commands``: "EHLO", "AUTH PLAIN", "QUIT" ...).
Recipients can also be refused for now: ``rcpt_limit`` answers 452 past that many recipients in a
transaction, ``defer`` greylists addresses with 451.

For faults below SMTP: ``ScriptedSocketServer`` speaks bytes a test scripts (a greeting dripped a byte at a time,
an endless reply, a TLS record instead of a reply), and ``WireTap`` relays a connection and keeps the bytes the
client sent, as they crossed the network.
"""

import asyncio
import functools
import socket
import threading
from dataclasses import dataclass
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.support.smtp_server import RecordingHandler, SmtpTestServer

@dataclass
class Fault:
    reply: Optional[str] = None     # the reply given instead of the normal one (None with drop or stall only)
    times: Optional[int] = 1        # transactions that get the fault; None: all of them
    drop: bool = False              # close the connection instead of replying
    stall: float = 0.0              # seconds to wait before replying (or dropping)
    skip: int = 0                   # transactions that pass normally before the fault applies


class FaultHandler(RecordingHandler):
    """RecordingHandler whose answers at the greeting, MAIL FROM, RCPT TO and end of DATA are scripted."""

    def __init__(self, pipelining=False, **script):
        super().__init__()
        self.pipelining = pipelining
        self.script(**script)

    def script(self, greeting=None, auth=None, mail=None, rcpt=None, data=None, refuse=(), hide=(), rcpt_limit=None,
               defer=None):
        """Set the faults (and forget what was received) for the next test.

        ``rcpt_limit``: recipients accepted per transaction, 452 for the rest; ``defer``: {address: times} answered
        451 (greylisting) that many times."""
        with self.lock:
            self.faults = {"greeting": greeting, "auth": auth, "mail": mail, "rcpt": rcpt, "data": data}
            self.rcpt_limit = rcpt_limit
            self.defer = {address.lower(): times for address, times in (defer or {}).items()}
            self.commands = []
            self._remaining = {phase: fault.times for phase, fault in self.faults.items() if fault}
            self._to_skip = {phase: fault.skip for phase, fault in self.faults.items() if fault}
            self.refuse = {address.lower() for address in refuse}
            self.hide = {keyword.upper() for keyword in hide}
            self.connections = 0
            self.received = []              # message bodies that reached the end of DATA, answered or not
            del self.messages[:]            # accepted messages (RecordingHandler)

    def take(self, phase):
        """The fault to apply now at ``phase``, or None (each use counts against ``times``)."""
        with self.lock:
            if phase == "greeting":
                self.connections += 1
            fault = self.faults.get(phase)
            if fault is None:
                return None
            if self._to_skip[phase] > 0:
                self._to_skip[phase] -= 1
                return None
            remaining = self._remaining[phase]
            if remaining is not None:
                if remaining <= 0:
                    return None
                self._remaining[phase] = remaining - 1
            return fault

    @staticmethod
    async def misbehave(server, fault):
        """Stall, then drop the connection or give the scripted reply (the server's status line)."""
        if fault.stall:
            await asyncio.sleep(fault.stall)
        if fault.drop or fault.reply is None:
            server.transport.abort()
            return "421 connection dropped"        # written to a closed transport: the client never sees it
        if fault.reply.startswith("421"):
            # 421 means "closing the connection": close right after the reply is written
            asyncio.get_running_loop().call_soon(server.transport.close)
        return fault.reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname        # with this (new-style) hook aiosmtpd leaves it to the handler
        if self.pipelining:
            # honest: aiosmtpd reads commands line by line from its stream buffer, so pipelined input works
            responses = responses[:-1] + ["250-PIPELINING"] + responses[-1:]
        return [line for line in responses if line[4:].split(" ")[0].upper() not in self.hide]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        fault = self.take("mail")
        if fault:
            return await self.misbehave(server, fault)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    def record(self, command):
        with self.lock:
            self.commands.append(command)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        fault = self.take("rcpt")
        if fault:
            return await self.misbehave(server, fault)
        with self.lock:
            if self.rcpt_limit is not None and len(envelope.rcpt_tos) >= self.rcpt_limit:
                return "452 4.5.3 Too many recipients"
            if self.defer.get(address.lower()):
                self.defer[address.lower()] -= 1
                return "451 4.7.1 <{0}>: Recipient address rejected: greylisted, try again later".format(address)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(envelope.original_content)
        fault = self.take("data")
        if fault:
            return await self.misbehave(server, fault)
        return await super().handle_DATA(server, session, envelope)


class FaultSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a scriptable greeting and AUTH, logging the commands it is given."""

    async def smtp_AUTH(self, arg):
        self.event_handler.record("AUTH " + (arg or "").split(" ")[0].upper())     # the mechanism, not the secret
        fault = self.event_handler.take("auth")
        if fault:
            reply = await self.event_handler.misbehave(self, fault)
            if not fault.drop and fault.reply:
                await self.push(reply)
            return
        return await super().smtp_AUTH(arg)

    async def _handle_client(self):
        # aiosmtpd has no handler hook before its 220 greeting; this method is where it is written
        fault = self.event_handler.take("greeting")
        if fault:
            reply = await self.event_handler.misbehave(self, fault)
            if fault.reply and not fault.drop:
                await self.push(reply)
            self.transport.close()
            return
        await super()._handle_client()


def _logging(command):
    @functools.wraps(getattr(SMTP, "smtp_" + command))      # keeps aiosmtpd's syntax attributes (HELP)
    async def method(self, arg):
        self.event_handler.record(command)
        return await getattr(SMTP, "smtp_" + command)(self, arg)
    return method


for _command in ("EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "RSET", "DATA", "NOOP", "QUIT"):
    setattr(FaultSMTP, "smtp_" + _command, _logging(_command))


class FaultController(Controller):
    def factory(self):
        return FaultSMTP(self.handler, **self.SMTP_kwargs)


class FaultSmtpServer(SmtpTestServer):
    """``with FaultSmtpServer(mail=Fault("421 ...")) as server``; ``server.script(...)`` re-scripts it."""

    controller_class = FaultController

    def __init__(self, greeting=None, mail=None, rcpt=None, data=None, refuse=(), hide=(), pipelining=False,
                 **server_options):
        """``pipelining``: advertise PIPELINING (RFC 2920)."""
        super().__init__(handler=FaultHandler(greeting=greeting, mail=mail, rcpt=rcpt, data=data, refuse=refuse,
                                              hide=hide, pipelining=pipelining), **server_options)

    @property
    def commands(self):
        return self.handler.commands

    def script(self, **faults):
        self.handler.script(**faults)

    @property
    def connections(self):
        return self.handler.connections

    @property
    def received(self):
        return self.handler.received


# --- below SMTP --------------------------------------------------------------------------------------------------


class _LoopbackListener:
    """A listening socket on a free 127.0.0.1 port, accepted in a daemon thread (``_accept``, a subclass's), and
    closed with every connection it accepted (``_sockets``) on leaving the ``with`` block."""

    def __init__(self):
        self._stop = threading.Event()
        self._sockets = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(5)
        self.port = self._listener.getsockname()[1]

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()

class ScriptedSocketServer(_LoopbackListener):
    """A TCP server on 127.0.0.1 that writes what the test scripts, for faults aiosmtpd cannot make.

    ``greeting`` is written first, one byte every ``drip`` seconds when drip is set; then every line the client
    sends is answered with the chunks ``answer(line)`` yields (a generator may yield forever: writing stops
    when the client goes away). ``bytes_sent`` counts what was written, ``client_went_away`` says the client
    closed the connection before the script ended, ``lines`` are the client's lines.
    """

    MAX_BYTES = 50 * 1024 * 1024         # a client that never stops reading is a failed test, not a hung one

    def __init__(self, greeting=b"220 scripted.example ESMTP\r\n", drip=0.0, answer=None):
        self.greeting, self.drip, self.answer = greeting, drip, answer or (lambda line: [b"250 OK\r\n"])
        self.bytes_sent = 0
        self.lines = []
        self.client_went_away = threading.Event()
        super().__init__()

    def _accept(self):
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _write(self, connection, data):
        if self.bytes_sent > self.MAX_BYTES or self._stop.is_set():
            raise ConnectionAbortedError("script stopped")
        connection.sendall(data)
        self.bytes_sent += len(data)

    def _serve(self, connection):
        try:
            if self.drip:
                for index in range(len(self.greeting)):
                    self._write(connection, self.greeting[index:index + 1])
                    if self._stop.wait(self.drip):
                        return
            else:
                self._write(connection, self.greeting)
            reader = connection.makefile("rb")
            for line in reader:
                self.lines.append(line)
                for chunk in self.answer(line):
                    self._write(connection, chunk)
            self.client_went_away.set()
        except (BrokenPipeError, ConnectionResetError):
            self.client_went_away.set()
        except OSError:
            pass


class WireTap(_LoopbackListener):
    """Relays 127.0.0.1:``port`` to the server at ``target_port`` and keeps what the client sent (``from_client``),
    as it crossed the network: encrypted after STARTTLS, in clear otherwise. ``client_reads`` lists the pieces
    as they were read: bytes the client sent before waiting for a reply arrive together."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.from_client = bytearray()
        self.client_reads = []
        super().__init__()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, sink, from_client):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    self.from_client.extend(data)
                    self.client_reads.append(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
