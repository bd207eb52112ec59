# -*- coding: utf-8 -*-
"""Local stand-ins for Microsoft Graph sendMail and the Gmail API messages.send: HTTPS on 127.0.0.1 with the
test PKI, HTTP/1.1 keep-alive, in a thread.

Each checks what the real service checks before it sends: the bearer token (issued by tests/oauth2_server.py:
Graph's is an app-only JWT whose aud must be this endpoint and whose roles must hold Mail.Send; Gmail's must
have been issued for the mailbox in the path with a scope that allows sending), the path, the Content-Type and
the body. Then it does what the provider does with the MIME message (cli/local_graph.py provider_delivery:
the recipients are To, Cc and Bcc, the Bcc header is removed), and what would be delivered is recorded as a
ReceivedMessage (tests/smtp_server.py), so the SMTP tests' assertions apply. ``faults`` scripts the next
answers (a status with headers and a JSON body, or DROP: the request is read and the connection closed
without an answer).
"""

import base64
import binascii
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

import jwt

from fn_outbound_email.cli.common import BackgroundServer
from fn_outbound_email.cli.local_graph import provider_delivery
from tests.support.oauth2_server import APP_TOKEN_KEY, _http_server
from tests.support.smtp_server import ReceivedMessage

DROP = "drop"
GMAIL_SEND_SCOPES = ("https://www.googleapis.com/auth/gmail.send", "https://mail.google.com/")


class MailApiTestServer(BackgroundServer):
    """Context manager: ``with GraphTestServer(oauth, tls_pki.context) as graph: graph.base_url, graph.messages``."""

    name = "mail-api"

    def __init__(self, oauth, tls_context, port=0):
        self.oauth = oauth
        self.messages = []           # ReceivedMessage: what the provider would deliver
        self.requests = []           # (method, path, headers, body) of every request, in order
        self.faults = []             # the next answers: (status, headers, body) or DROP
        self.lock = threading.Lock()
        self._numbers = itertools.count(1)
        server = _http_server(port, _handler_class(self))
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
        super().__init__(server, name=self.name)

    @property
    def base_url(self):
        return "https://127.0.0.1:{0}".format(self.port)

    def handle(self, method, path, headers, body):
        """(status, headers, JSON body or None), or DROP."""
        with self.lock:
            self.requests.append((method, path, headers, body))
            if self.faults:
                return self.faults.pop(0)
        token = headers.get("Authorization", "")
        if not token.startswith("Bearer "):
            return self._error(401, "no bearer token")
        return self.answer(method, urlsplit(path), headers, body, token[len("Bearer "):])

    def deliver(self, mailbox, mime):
        """Record what the provider delivers; the refusal when the message names no recipient, else None."""
        recipients, delivered = provider_delivery(mime)
        if not recipients:
            return self.no_recipient()
        with self.lock:
            self.messages.append(ReceivedMessage(mail_from=mailbox, rcpt_tos=recipients, data=delivered, tls=True,
                                                 auth_user=mailbox))
        return None

    def number(self):
        return next(self._numbers)


class GraphTestServer(MailApiTestServer):
    """``POST /v1.0/users/{mailbox}/sendMail``: MIME as base64 text/plain; JSON only as selftest sends it.

    ``allowed_mailboxes``: the application access policy (None: any mailbox); ``max_request_bytes``: Graph's
    request size limit."""

    name = "graph"
    _PATH = re.compile(r"^/v1\.0/users/([^/]+)/sendMail$")

    def __init__(self, oauth, tls_context, port=0):
        super().__init__(oauth, tls_context, port)
        self.allowed_mailboxes = None
        self.max_request_bytes = 4 * 1024 * 1024
        self.resource = None
        self.serve_as(self.base_url)

    def serve_as(self, url):
        """The URL the app reaches this endpoint at (a proxy's, in front of it): its tokens' audience."""
        self.resource = url
        self.oauth.graph_resources.append(url)

    def answer(self, method, url, headers, body, token):
        match = self._PATH.match(url.path)
        if method != "POST" or not match:
            return self._error(404, "Resource not found for the segment", "BadRequest")
        mailbox = unquote(match.group(1))
        refusal = self._check_token(token, mailbox)
        if refusal:
            return refusal
        if len(body) > self.max_request_bytes:
            return 413, {}, {"error": {"code": "RequestEntityTooLarge", "message": "The request is too large."}}
        kind = headers.get("Content-Type", "").split(";")[0].strip()
        if kind == "application/json":
            message = json.loads(body.decode("utf-8")).get("message") or {}
            if not message.get("toRecipients"):
                return self.no_recipient()
            return self._error(400, "JSON messages are not served here", "ErrorInvalidRequest")
        if kind != "text/plain":
            return self._error(415, "Unsupported Content-Type {0}".format(kind), "UnsupportedMediaType")
        try:
            mime = base64.b64decode(body, validate=True)
        except binascii.Error:
            return self._error(400, "Invalid base64 string for MIME content.", "ErrorMimeContentInvalidBase64String")
        return self.deliver(mailbox, mime) or (202, {}, None)

    def _check_token(self, token, mailbox):
        if token not in self.oauth.valid_access_tokens:
            return self._error(401, "Access token validation failure. Invalid audience.", "InvalidAuthenticationToken")
        claims = jwt.decode(token, APP_TOKEN_KEY, algorithms=["HS256"], options={"verify_aud": False})
        if claims.get("aud") != self.resource:
            return self._error(401, "Access token validation failure. Invalid audience.", "InvalidAuthenticationToken")
        if "Mail.Send" not in claims.get("roles", []):
            return self._error(403, "Access is denied. Check credentials and try again.", "ErrorAccessDenied")
        if self.allowed_mailboxes is not None and mailbox not in self.allowed_mailboxes:
            return self._error(403, "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
                                    "AccessPolicy settings.", "ErrorAccessDenied")
        return None

    def no_recipient(self):
        return self._error(400, "At least one recipient is not valid., A message can't be sent because it contains "
                                "no recipients.", "ErrorInvalidRecipients")

    @staticmethod
    def _error(status, message, code="ErrorInvalidRequest"):
        return status, {}, {"error": {"code": code, "message": message}}


class GmailTestServer(MailApiTestServer):
    """``POST /gmail/v1/users/{mailbox}/messages/send`` ({"raw": base64url}) and
    ``POST /upload/gmail/v1/users/{mailbox}/messages/send?uploadType=media`` (message/rfc822)."""

    name = "gmail"
    _PATH = re.compile(r"^/(upload/)?gmail/v1/users/([^/]+)/messages/send$")

    def answer(self, method, url, headers, body, token):
        match = self._PATH.match(url.path)
        if method != "POST" or not match:
            return self._error(404, "Not Found", "NOT_FOUND")
        upload, mailbox = bool(match.group(1)), unquote(match.group(2))
        if not self.oauth.accepts(mailbox, token):
            return self._error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if self.oauth.token_scopes.get(token) not in GMAIL_SEND_SCOPES:
            return self._error(403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED",
                               "insufficientPermissions")
        kind = headers.get("Content-Type", "").split(";")[0].strip()
        if upload:
            if url.query != "uploadType=media" or kind != "message/rfc822":
                return self._error(400, "Media type '{0}' is not supported.".format(kind), "INVALID_ARGUMENT")
            mime = body
        else:
            if kind != "application/json":
                return self._error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
            try:
                mime = base64.urlsafe_b64decode(json.loads(body.decode("utf-8"))["raw"])
            except (ValueError, KeyError, binascii.Error):
                return self._error(400, "Invalid value for ByteString", "INVALID_ARGUMENT")
        number = self.number()
        return self.deliver(mailbox, mime) or (200, {}, {"id": "msg-{0}".format(number),
                                                         "threadId": "thread-{0}".format(number),
                                                         "labelIds": ["SENT"]})

    def no_recipient(self):
        return self._error(400, "Recipient address required", "INVALID_ARGUMENT", "invalidArgument")

    @staticmethod
    def _error(status, message, code, reason=None):
        error = {"code": status, "message": message, "status": code}
        if reason:
            error["errors"] = [{"reason": reason, "message": message, "domain": "global"}]
        return status, {}, {"error": error}


def _handler_class(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"       # keep-alive, as the real services

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = server.handle("POST", self.path, dict(self.headers.items()), body)
            if answer == DROP:
                self.close_connection = True
                return
            status, headers, payload = answer
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_DELETE = do_PUT = do_POST

        def log_message(self, *args):      # quiet: pytest output stays readable
            pass

    return Handler
