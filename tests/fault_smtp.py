# -*- coding: utf-8 -*-
"""An SMTP server that misbehaves on purpose: the failure tests' counterpart of tests/smtp_server.py.

It is the same aiosmtpd server on 127.0.0.1 (``SmtpTestServer``, ``RecordingHandler``) with scripted
faults at the greeting, at MAIL FROM, at RCPT TO and at the end of DATA: a reply of the test's choosing (421, 451,
552 ...), a dropped connection, or a stall past the client's timeout. Recipients can be refused with 550
and the EHLO reply can leave out STARTTLS or AUTH.

Each fault applies to a number of transactions (``times``; None for every one), so "421 once, then
OK" is ``Fault("421 ...", times=1)``. The server counts connections, keeps every message body that
reached the end of DATA (``received``, answered or not) and the accepted ones (``messages``).
"""

import asyncio
from dataclasses import dataclass
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.smtp_server import RecordingHandler, SmtpTestServer

@dataclass
class Fault:
    reply: Optional[str] = None     # the reply given instead of the normal one (None with drop or stall only)
    times: Optional[int] = 1        # transactions that get the fault; None: all of them
    drop: bool = False              # close the connection instead of replying
    stall: float = 0.0              # seconds to wait before replying (or dropping)


class FaultHandler(RecordingHandler):
    """RecordingHandler whose answers at the greeting, MAIL FROM, RCPT TO and end of DATA are scripted."""

    def __init__(self, **script):
        super().__init__()
        self.script(**script)

    def script(self, greeting=None, mail=None, rcpt=None, data=None, refuse=(), hide=()):
        """Set the faults (and forget what was received) for the next test."""
        with self.lock:
            self.faults = {"greeting": greeting, "mail": mail, "rcpt": rcpt, "data": data}
            self._remaining = {phase: fault.times for phase, fault in self.faults.items() if fault}
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
        return [line for line in responses if line[4:].split(" ")[0].upper() not in self.hide]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        fault = self.take("mail")
        if fault:
            return await self.misbehave(server, fault)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        fault = self.take("rcpt")
        if fault:
            return await self.misbehave(server, fault)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(envelope.original_content)
        fault = self.take("data")
        if fault:
            return await self.misbehave(server, fault)
        return await super().handle_DATA(server, session, envelope)


class FaultSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a scriptable greeting."""

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


class FaultController(Controller):
    def factory(self):
        return FaultSMTP(self.handler, **self.SMTP_kwargs)


class FaultSmtpServer(SmtpTestServer):
    """``with FaultSmtpServer(mail=Fault("421 ...")) as server``; ``server.script(...)`` re-scripts it."""

    controller_class = FaultController

    def __init__(self, greeting=None, mail=None, rcpt=None, data=None, refuse=(), hide=(), **server_options):
        super().__init__(handler=FaultHandler(greeting=greeting, mail=mail, rcpt=rcpt, data=data, refuse=refuse,
                                              hide=hide), **server_options)

    def script(self, **faults):
        self.handler.script(**faults)

    @property
    def connections(self):
        return self.handler.connections

    @property
    def received(self):
        return self.handler.received

