# -*- coding: utf-8 -*-
"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, recording what it receives.

Variants: plain, STARTTLS, implicit TLS, AUTH (LOGIN/PLAIN) with one valid
user, AUTH XOAUTH2 accepting the tokens a test approves, and recipients the
server refuses.
"""

import base64
import binascii
import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass
from typing import List

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "mailer@example.com"
SMTP_PASSWORD = "s3cret-Passw0rd!"


_held_sockets = {}                 # port -> the bound socket free_port() holds it with
_held_lock = threading.Lock()


def free_port():
    """A free 127.0.0.1 port, kept bound until the server meant for it takes the socket over.

    Test modules need their port when they are imported (their app.config names it) and start the server
    later; a port only looked up then could be taken by another process in between. Servers here
    (SmtpTestServer, the fake OAuth2 server) take the held socket with ``take_bound_socket``; connecting to a
    port nobody took is refused, as to a free one.
    """
    # proto IPPROTO_TCP, as asyncio makes its own: it sets TCP_NODELAY on accepted connections only then
    # (socket.socket()'s proto 0 brought back the 40 ms delayed-ACK stall per message)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    with _held_lock:
        _held_sockets[port] = sock
    return port


def take_bound_socket(port):
    """The socket free_port() holds ``port`` with (the caller owns it from now on), or None."""
    with _held_lock:
        return _held_sockets.pop(port, None)


def serve_on_bound_socket(controller):
    """Make an aiosmtpd Controller listen on the socket free_port() holds for its port, when there is one.

    aiosmtpd binds host and port itself; asyncio's create_server also takes a bound socket, which is what the
    Controller is given here (its connection check at start still uses host and port).
    """
    sock = take_bound_socket(controller.port)
    if sock is not None:
        controller._create_server = lambda: controller.loop.create_server(
            controller._factory_invoker, sock=sock, ssl=controller.ssl_context)
    return controller


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: List[str]
    data: bytes
    tls: bool = False            # the session was encrypted (STARTTLS or implicit TLS)
    auth_user: str = None        # who logged in, when AUTH was used
    ehlo_name: str = None        # the name the client gave in EHLO/HELO
    peer: tuple = None           # the client's (address, port): one per SMTP session
    mail_options: List[str] = None   # the MAIL FROM parameters (SIZE=, SMTPUTF8, BODY=)

    @property
    def message(self):
        # parsed with LF line ends, so text parts read as Python text does
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)


class RecordingHandler:
    def __init__(self, refuse=()):
        self.messages = []
        self.refuse = {address.lower() for address in refuse}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 <{0}>: mailbox unavailable".format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            login = getattr(session, "auth_data", None)
            self.messages.append(ReceivedMessage(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                tls=session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                auth_user=login.login.decode() if isinstance(login, LoginPassword) else None,
                ehlo_name=session.host_name, peer=session.peer, mail_options=list(envelope.mail_options)))
        return "250 OK: queued"


def password_authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER and \
        auth_data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class Xoauth2Handler(RecordingHandler):
    """A RecordingHandler whose AUTH XOAUTH2 accepts what ``accept(user, token)`` approves.

    A refusal first sends the JSON challenge Gmail sends (the client must answer with an empty line), then
    535; with ``challenge_on_refusal`` False just 535. ``xoauth2_attempts`` lists (user, token, accepted).
    """

    def __init__(self, accept, refuse=()):
        super().__init__(refuse=refuse)
        self.accept = accept
        self.challenge_on_refusal = True
        self.xoauth2_attempts = []

    async def auth_XOAUTH2(self, server, args):
        try:
            raw = base64.b64decode(args[1], validate=True).decode() if len(args) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raw = ""
        fields = raw.split("\x01")
        if len(fields) != 4 or fields[2:] != ["", ""] or not fields[0].startswith("user=") or \
                not fields[1].startswith("auth=Bearer "):
            return AuthResult(success=False, handled=False, message="501 5.5.2 malformed XOAUTH2 response")
        user, token = fields[0][len("user="):], fields[1][len("auth=Bearer "):]
        accepted = bool(self.accept(user, token))
        with self.lock:
            self.xoauth2_attempts.append((user, token, accepted))
        if accepted:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        if self.challenge_on_refusal:
            details = json.dumps({"status": "400", "schemes": "Bearer", "scope": "https://mail.example.com/"})
            await server.challenge_auth(details)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")


class SmtpTestServer:
    """Context manager: ``with SmtpTestServer(...) as server: server.port, server.messages``."""

    controller_class = Controller      # subclasses (tests/support/fault_smtp.py) swap in their own SMTP protocol

    def __init__(self, handler=None, tls_context=None, implicit_tls_context=None, require_starttls=False,
                 auth=False, refuse=(), port=None, xoauth2=None, data_size_limit=None, smtputf8=True,
                 exclude_auth=()):
        """``xoauth2``: a callable(user, token) -> bool; the server then requires AUTH and offers only XOAUTH2.
        ``data_size_limit``: the EHLO SIZE (aiosmtpd's default otherwise); ``smtputf8``: offer SMTPUTF8 (aiosmtpd's Controller does by default);
        ``exclude_auth``: AUTH mechanisms not offered."""
        self.handler = handler or (Xoauth2Handler(xoauth2, refuse=refuse) if xoauth2 else
                                   RecordingHandler(refuse=refuse))
        self.port = port or free_port()
        kwargs = {"hostname": "127.0.0.1", "port": self.port, "server_hostname": "localhost"}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
        if implicit_tls_context is not None:
            kwargs["ssl_context"] = implicit_tls_context
        if auth:
            kwargs["authenticator"] = password_authenticator
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = False     # tests also log in without TLS
            kwargs["auth_exclude_mechanism"] = tuple(exclude_auth)
        if data_size_limit is not None:
            kwargs["data_size_limit"] = data_size_limit
        kwargs["enable_SMTPUTF8"] = smtputf8
        if xoauth2:
            kwargs.update(auth_required=True, auth_require_tls=False, auth_exclude_mechanism=("LOGIN", "PLAIN"))
        self._controller_kwargs = kwargs
        self.controller = serve_on_bound_socket(self.controller_class(self.handler, **kwargs))

    def stop(self):
        self.controller.stop()

    def start(self):
        """(Re)start on the same port: an aiosmtpd Controller cannot be started twice."""
        self.controller = self.controller_class(self.handler, **self._controller_kwargs)
        self.controller.start()

    @property
    def messages(self):
        return self.handler.messages

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc_info):
        self.controller.stop()
