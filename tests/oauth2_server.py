# -*- coding: utf-8 -*-
"""A real OAuth2 authorization server for the tests: http.server on 127.0.0.1 in a thread.

``GET /authorize`` answers like a provider after the user's consent: a redirect to
redirect_uri with ``code`` and ``state`` (or ``error=access_denied``). ``POST /token``
serves the refresh-token and authorization-code grants (PKCE S256 checked), issues
access tokens and counts requests. Switches on the instance change its behaviour.
"""

import base64
import hashlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fn_outbound_email.cli.common import BackgroundServer

CLIENT_ID = "smtp-app-client"
CLIENT_SECRET = "client-Secret-9f8e7d"
REFRESH_TOKEN = "refresh-Token-1a2b3c"


class FakeOAuth2Server(BackgroundServer):
    """Context manager: ``with FakeOAuth2Server() as oauth: oauth.token_url, oauth.token_requests``."""

    def __init__(self, port=0):
        self.expires_in = 3600
        self.delay = 0.0                 # seconds /token waits before answering (lets concurrent callers race)
        self.rotate = False              # each refresh returns a new refresh token; the old one stops working
        self.error = None                # (status, body dict): answer every token request with it
        self.deny_consent = False        # /authorize redirects with error=access_denied
        self.refresh_token_for_code = True  # False: the code grant returns an access token only
        self.state_override = None       # /authorize sends back this state instead of the one it was given
        self.refresh_tokens = {REFRESH_TOKEN}
        self.valid_access_tokens = set()  # what the SMTP server should accept
        self.token_requests = []          # the forms POSTed to /token
        self.authorize_requests = []      # the queries of /authorize
        self._codes = {}                  # code -> (redirect_uri, code_challenge)
        self._numbers = itertools.count(1)
        self.lock = threading.Lock()
        super().__init__(ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self)), name="fake-oauth2")

    @property
    def base_url(self):
        return "http://127.0.0.1:{0}".format(self.port)

    @property
    def token_url(self):
        return self.base_url + "/token"

    @property
    def auth_url(self):
        return self.base_url + "/authorize"

    def accepts(self, user, token):
        """For SmtpTestServer(xoauth2=...): only tokens this server issued and has not revoked."""
        with self.lock:
            return token in self.valid_access_tokens

    def revoke_access_tokens(self):
        with self.lock:
            self.valid_access_tokens.clear()

    # --- endpoints ------------------------------------------------------------------------------------
    def authorize(self, query):
        """The Location of the redirect back to the app."""
        with self.lock:
            self.authorize_requests.append(query)
            number = next(self._numbers)
        if self.deny_consent:
            answer = {"error": "access_denied", "error_description": "The user declined the consent"}
        else:
            code = "code-{0}".format(number)
            with self.lock:
                self._codes[code] = (query.get("redirect_uri"), query.get("code_challenge"))
            answer = {"code": code}
        answer["state"] = self.state_override if self.state_override is not None else query.get("state", "")
        parts = urlsplit(query.get("redirect_uri", ""))
        return urlunsplit(parts._replace(query=urlencode(answer)))

    def token(self, form):
        """(HTTP status, JSON body) for a token request."""
        time.sleep(self.delay)
        with self.lock:
            self.token_requests.append(form)
            number = next(self._numbers)
            if self.error:
                return self.error
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return 401, {"error": "invalid_client", "error_description": "Unknown client or wrong secret"}
            answer = {"token_type": "Bearer", "access_token": "access-Token-{0}".format(number)}
            if self.expires_in is not None:
                answer["expires_in"] = self.expires_in
            grant = form.get("grant_type")
            if grant == "refresh_token":
                if form.get("refresh_token") not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant", "error_description": "The refresh token is not valid"}
                if self.rotate:
                    self.refresh_tokens = {"refresh-Rotated-{0}".format(number)}
                    answer["refresh_token"] = "refresh-Rotated-{0}".format(number)
            elif grant == "authorization_code":
                redirect_uri, challenge = self._codes.pop(form.get("code"), (None, None))
                verifier = form.get("code_verifier") or ""
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if redirect_uri is None or redirect_uri != form.get("redirect_uri") or digest != challenge:
                    return 400, {"error": "invalid_grant", "error_description": "Code, redirect_uri or verifier wrong"}
                if self.refresh_token_for_code:
                    answer["refresh_token"] = "refresh-From-Code-{0}".format(number)
                    self.refresh_tokens.add(answer["refresh_token"])
            else:
                return 400, {"error": "unsupported_grant_type"}
            self.valid_access_tokens.add(answer["access_token"])
            return 200, answer


def _handler_class(server):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path != "/authorize":
                self.send_error(404)
                return
            self.send_response(302)
            self.send_header("Location", server.authorize(dict(parse_qsl(parts.query))))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            if urlsplit(self.path).path != "/token":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            status, body = server.token(form)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):      # quiet: pytest output stays readable
            pass

    return Handler
