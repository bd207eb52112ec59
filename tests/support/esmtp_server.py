# -*- coding: utf-8 -*-
"""aiosmtpd with the two ESMTP extensions real relays offer and aiosmtpd does not: PIPELINING and CHUNKING.

PIPELINING (RFC 2920) needs nothing from a server but reading commands in order and answering each in
turn, which aiosmtpd already does (it reads one line at a time from a buffered stream), so advertising it
is honest. CHUNKING (RFC 3030) needs the BDAT command, added here: the chunk is read as exactly the octets
announced, with no dot-stuffing; BDAT ... LAST ends the message, which then goes to the same handler as
DATA. The server records each command line it read (``commands``), so tests see what the client sent.
"""

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, syntax

from tests.support.smtp_server import SmtpTestServer

EXTENSIONS = ("PIPELINING", "CHUNKING")


class EsmtpProtocol(SMTP):
    """aiosmtpd's SMTP plus PIPELINING and CHUNKING (``extensions`` chooses which are advertised)."""

    extensions = EXTENSIONS
    command_log = None             # a list the server appends each command line to

    async def smtp_EHLO(self, hostname):
        # aiosmtpd offers no hook for extension keywords without replacing the handler's own EHLO hook:
        # collect its reply lines, then add ours before the last line
        lines = []
        real_push = self.push

        async def collect(status):
            lines.append(status)

        self.push = collect
        try:
            await super().smtp_EHLO(hostname)
        finally:
            del self.push              # the instance attribute hid the method; the method is back
        if lines and lines[-1].startswith("250 "):
            lines[-1:-1] = ["250-" + keyword for keyword in self.extensions]
        for line in lines:
            await real_push(line)

    def _log_command(self, line):
        if self.command_log is not None:
            self.command_log.append(line)

    async def smtp_MAIL(self, arg):
        self._log_command("MAIL " + (arg or ""))
        self._bdat_chunks = []
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self._log_command("RCPT " + (arg or ""))
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg):
        self._log_command("DATA")
        await super().smtp_DATA(arg)

    async def smtp_RSET(self, arg):
        self._log_command("RSET")
        self._bdat_chunks = []
        await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg):
        self._log_command("NOOP")
        await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg):
        self._log_command("QUIT")
        await super().smtp_QUIT(arg)

    @syntax("BDAT chunk-size [LAST]")
    async def smtp_BDAT(self, arg):
        self._log_command("BDAT " + (arg or ""))
        words = (arg or "").split()
        if "CHUNKING" not in self.extensions or not words or not words[0].isdigit() or len(words) > 2 or \
                (len(words) == 2 and words[1].upper() != "LAST"):
            await self.push("501 5.5.4 Syntax: BDAT chunk-size [LAST]")
            return
        # the chunk follows the command whatever the answer will be: read it first (RFC 3030 section 2)
        chunk = await self._reader.readexactly(int(words[0]))
        last = len(words) == 2
        if await self.check_helo_needed() or await self.check_auth_needed("BDAT"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        chunks = getattr(self, "_bdat_chunks", None)
        if chunks is None:
            chunks = self._bdat_chunks = []
        chunks.append(chunk)
        if not last:
            await self.push("250 2.0.0 {0} octets received".format(len(chunk)))
            return
        content = b"".join(chunks)
        self._bdat_chunks = []
        if self.data_size_limit and len(content) > self.data_size_limit:
            await self.push("552 5.3.4 Error: Too much mail data")
            self._set_post_data_state()
            return
        self.envelope.original_content = content
        self.envelope.content = content.decode("utf-8", errors="surrogateescape") if self._decode_data else content
        status = await self._call_handler_hook("DATA")
        await self.push("250 OK" if status is None or not isinstance(status, str) else status)
        self._set_post_data_state()


class EsmtpController(Controller):
    def __init__(self, handler, extensions=EXTENSIONS, command_log=None, **kwargs):
        self._extensions = tuple(extensions)
        self._command_log = command_log
        super().__init__(handler, **kwargs)

    def factory(self):
        protocol = EsmtpProtocol(self.handler, **self.SMTP_kwargs)
        protocol.extensions = self._extensions
        protocol.command_log = self._command_log
        return protocol


class EsmtpTestServer(SmtpTestServer):
    """SmtpTestServer that offers PIPELINING and CHUNKING (or the ``extensions`` given)."""

    def __init__(self, extensions=EXTENSIONS, **kwargs):
        self.extensions = tuple(extensions)
        self.commands = []
        self.controller_class = self._controller
        super().__init__(**kwargs)

    def _controller(self, handler, **kwargs):
        return EsmtpController(handler, extensions=self.extensions, command_log=self.commands, **kwargs)
