# -*- coding: utf-8 -*-
"""A small Microsoft Graph stand-in on 127.0.0.1 for ``outbound-email demo --transport graph``.

It serves what the app's Graph transport uses, over plain HTTP on loopback (the app takes http only for
127.0.0.1 and localhost): a token endpoint for the client credentials grant (``POST /token``, which issues a
random token for its one demo client) and ``POST /v1.0/users/{mailbox}/sendMail`` with the MIME message
base64-encoded as text/plain, which needs that token. It then does what Exchange Online does with the MIME:
the recipients are To, Cc and Bcc, the Bcc header is removed; it keeps the result in memory and relays nothing.

    with LocalGraphServer() as graph:
        ... graph.base_url, graph.token_url, graph.client_id, graph.client_secret ...
        graph.messages[0].data
"""

import base64
import binascii
import email.parser
import email.policy
import json
import re
import secrets
import threading
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from fn_outbound_email.cli.common import BackgroundServer
from fn_outbound_email.cli.local_smtp import ReceivedMessage

_SEND_PATH = re.compile(r"^/v1\.0/users/([^/]+)/sendMail$")
_BCC_FIELD = re.compile(rb"(?im)^bcc:.*\r\n(?:[ \t].*\r\n)*")
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def provider_delivery(mime):
    """What a mail API does with a MIME message: (its recipients from To, Cc and Bcc, each once, in order; the
    message without its Bcc header)."""
    end = mime.find(b"\r\n\r\n")
    header_block = mime[:end + 2] if end >= 0 else mime
    headers = email.parser.BytesHeaderParser(policy=email.policy.SMTPUTF8).parsebytes(header_block)
    recipients, seen = [], set()
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in headers.get_all(name, [])]
    for _, address in getaddresses(fields):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients, _BCC_FIELD.sub(b"", header_block) + mime[len(header_block):]


class LocalGraphServer(BackgroundServer):
    """Context manager: the token endpoint and sendMail on a free port of 127.0.0.1, from a background thread."""

    description = "local Microsoft Graph endpoint"

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.client_id = "outbound-email-demo"
        self.client_secret = secrets.token_urlsafe(24)
        self._tokens = set()
        self._messages = []
        self._lock = threading.Lock()
        super().__init__(ThreadingHTTPServer((host, 0), _handler_class(self)), name="local-graph")

    @property
    def base_url(self):
        return "http://{0}:{1}".format(self.host, self.port)

    @property
    def token_url(self):
        return self.base_url + "/token"

    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    def token(self, form):
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Unknown client or wrong secret"}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return 200, {"token_type": "Bearer", "access_token": token, "expires_in": 3600}

    def send_mail(self, path, headers, body):
        match = _SEND_PATH.match(urlsplit(path).path)
        if not match:
            return 404, _error("ResourceNotFound", "Resource not found for the segment")
        with self._lock:
            known = headers.get("Authorization", "")[len("Bearer "):] in self._tokens
        if not known:
            return 401, _error("InvalidAuthenticationToken", "Access token validation failure.")
        if headers.get("Content-Type", "").split(";")[0].strip() != "text/plain":
            return 400, _error("ErrorInvalidRequest", "Only MIME (text/plain, base64) is served here")
        try:
            recipients, delivered = provider_delivery(base64.b64decode(body, validate=True))
        except binascii.Error:
            return 400, _error("ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
        if not recipients:
            return 400, _error("ErrorInvalidRecipients", "A message can't be sent because it contains no recipients.")
        with self._lock:
            self._messages.append(ReceivedMessage(unquote(match.group(1)), recipients, delivered))
        return 202, None


def _error(code, message):
    return {"error": {"code": code, "message": message}}


def _handler_class(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._answer(413, _error("RequestEntityTooLarge", "The request is too large."), close=True)
                return
            body = self.rfile.read(length)
            if urlsplit(self.path).path == "/token":
                self._answer(*server.token(dict(parse_qsl(body.decode("utf-8", "replace")))))
            else:
                self._answer(*server.send_mail(self.path, dict(self.headers.items()), body))

        def _answer(self, status, payload, close=False):
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):      # the demo prints its own summary
            pass

    return Handler
