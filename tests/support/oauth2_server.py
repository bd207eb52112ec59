# -*- coding: utf-8 -*-
"""A real OAuth2 authorization server for the tests: http.server on 127.0.0.1 in a thread.

``GET /authorize`` answers like a provider after the user's consent: a redirect to
redirect_uri with ``code`` and ``state`` (or ``error=access_denied``). ``POST /token``
serves the refresh-token and authorization-code grants (PKCE S256 checked), the
client credentials grant (client_secret, or an RFC 7523 client assertion verified
with the public key of a registered certificate, found by its x5t#S256 thumbprint)
and the JWT bearer grant (the assertion verified with a registered service
account's public key, its sub allowed only through "domain-wide delegation"). Both
assertions must name this endpoint as aud, live at most 10 minutes, and carry a jti
never seen before. It issues access tokens and counts requests. Switches on the
instance change its behaviour.
"""

import base64
import hashlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives import serialization

from fn_outbound_email.cli.common import BackgroundServer
from tests.support.smtp_server import take_bound_socket

CLIENT_ID = "smtp-app-client"
CLIENT_SECRET = "client-Secret-9f8e7d"
REFRESH_TOKEN = "refresh-Token-1a2b3c"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GMAIL_SCOPE = "https://mail.google.com/"
MAX_ASSERTION_SECONDS = 600
APP_TOKEN_KEY = "fake-issuer-signing-key-of-32-bytes!"     # signs the app-only tokens (resource servers check it)


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
        self.token_users = {}             # access token -> the mailboxes it may log in as (absent: any)
        self.client_certificates = {}     # x5t#S256 -> certificate registered for CLIENT_ID ("uploaded")
        self.service_accounts = {}        # client_email -> (key id, public key)
        self.delegations = {}             # client_email -> {(mailbox, scope)} allowed by domain-wide delegation
        self.app_mailboxes = None         # client credentials tokens log in only as these (None: any mailbox)
        self.roles = ["SMTP.SendAsApp"]   # what client credentials tokens grant (their JWT roles claim)
        self.graph_resources = []         # Graph endpoints client credentials tokens may be issued for
        self.token_scopes = {}            # jwt_bearer access token -> the scope it was issued with
        self.seen_jtis = set()
        self.assertions = []              # the verified claims of every accepted assertion
        self.token_requests = []          # the forms POSTed to /token
        self.authorize_requests = []      # the queries of /authorize
        self._codes = {}                  # code -> (redirect_uri, code_challenge)
        self._numbers = itertools.count(1)
        self.lock = threading.Lock()
        super().__init__(_http_server(port, _handler_class(self)), name="fake-oauth2")

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
        """For SmtpTestServer(xoauth2=...): only tokens this server issued (for that mailbox) and has not revoked."""
        with self.lock:
            allowed = self.token_users.get(token)
            return token in self.valid_access_tokens and (allowed is None or user in allowed)

    def register_client_certificate(self, certificate):
        """As an administrator uploads a certificate to the app registration."""
        der = certificate.public_bytes(serialization.Encoding.DER)
        self.client_certificates[jwt.utils.base64url_encode(hashlib.sha256(der).digest()).decode()] = certificate

    def register_service_account(self, client_email, key_id, public_key, delegated=()):
        """A service account and the (mailbox, scope) pairs domain-wide delegation allows it."""
        self.service_accounts[client_email] = (key_id, public_key)
        self.delegations[client_email] = set(delegated)

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
            grant = form.get("grant_type")
            if grant == JWT_BEARER_GRANT_TYPE:
                return self._jwt_bearer(form, number)
            refused = self._client_authentication(form)
            if refused:
                return refused
            answer = {"token_type": "Bearer", "access_token": "access-Token-{0}".format(number)}
            if self.expires_in is not None:
                answer["expires_in"] = self.expires_in
            if grant == "client_credentials":
                # Exchange Online's resource, or a Graph endpoint's (the tests' local Graph is its own resource)
                resource = (form.get("scope") or "https://outlook.office365.com/.default")[:-len("/.default")]
                if not (form.get("scope") or "/.default").endswith("/.default") or \
                        resource not in ("https://outlook.office365.com",) + tuple(self.graph_resources):
                    return 400, {"error": "invalid_scope", "error_description": "AADSTS70011: The provided value "
                                 "for the input parameter 'scope' is not valid."}
                answer["access_token"] = self._app_token(number, resource)
                return self._issue(answer, self.app_mailboxes)
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

    # --- app-only grants (called with the lock held) -----------------------------------------------------------
    def _issue(self, answer, users):
        if users is not None:
            self.token_users[answer["access_token"]] = set(users)
        self.valid_access_tokens.add(answer["access_token"])
        return 200, answer

    def _app_token(self, number, resource="https://outlook.office365.com"):
        """An app-only access token as Entra ID issues them: a JWT whose roles claim lists the app permissions."""
        claims = {"aud": resource, "appid": CLIENT_ID, "roles": list(self.roles),
                  "jti": "app-token-{0}".format(number), "iat": int(time.time())}
        return jwt.encode(claims, APP_TOKEN_KEY, algorithm="HS256")

    def _client_authentication(self, form):
        """None when the client proved who it is (secret or assertion), else the refusal."""
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application with "
                         "identifier '{0}' was not found in the directory.".format(form.get("client_id"))}
        if "client_assertion" not in form:
            if form.get("client_secret") != CLIENT_SECRET:
                return 401, {"error": "invalid_client", "error_description": "Unknown client or wrong secret"}
            return None
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return 400, {"error": "invalid_request", "error_description": "wrong client_assertion_type"}
        try:
            header = jwt.get_unverified_header(form["client_assertion"])
        except jwt.PyJWTError as err:
            return 401, {"error": "invalid_client", "error_description": "malformed assertion: {0}".format(err)}
        certificate = self.client_certificates.get(header.get("x5t#S256"))
        der = certificate.public_bytes(serialization.Encoding.DER) if certificate else b""
        if certificate is None or header.get("x5t") != jwt.utils.base64url_encode(hashlib.sha1(der).digest()).decode():
            return 401, {"error": "invalid_client", "error_description": "AADSTS700027: Client assertion contains "
                         "an invalid signature. [Reason - The key was not found.]"}
        claims, refused = self._verified(form["client_assertion"], certificate.public_key())
        if refused:
            return refused
        if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
            return 401, {"error": "invalid_client", "error_description": "iss and sub must be the client_id"}
        return None

    def _jwt_bearer(self, form, number):
        assertion = form.get("assertion") or ""
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            issuer = None
        if issuer not in self.service_accounts:
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        key_id, public_key = self.service_accounts[issuer]
        try:
            header_kid = jwt.get_unverified_header(assertion).get("kid")
        except jwt.PyJWTError:
            header_kid = None
        if header_kid != key_id:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        claims, refused = self._verified(assertion, public_key, refusal="invalid_grant")
        if refused:
            return refused
        if (claims.get("sub"), claims.get("scope")) not in self.delegations[issuer]:
            return 401, {"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve "
                         "access tokens using this method, or client not authorized for any of the scopes requested."}
        answer = {"token_type": "Bearer", "access_token": "ya29.service-{0}".format(number)}
        self.token_scopes[answer["access_token"]] = claims["scope"]
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return self._issue(answer, {claims["sub"]})

    def _verified(self, assertion, public_key, refusal="invalid_client"):
        """(claims, None) for an assertion signed by ``public_key`` for this endpoint, else (None, refusal)."""
        def refuse(text):
            return None, (400 if refusal == "invalid_grant" else 401, {"error": refusal, "error_description": text})
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256", "ES256"], audience=self.token_url,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.InvalidAudienceError:
            return refuse("The assertion's audience (aud) is not this token endpoint {0}".format(self.token_url))
        except jwt.InvalidSignatureError:
            return refuse("Invalid JWT Signature.")
        except jwt.PyJWTError as err:
            return refuse("Invalid JWT: {0}".format(err))
        if claims["exp"] - time.time() > MAX_ASSERTION_SECONDS or claims["exp"] - claims["iat"] > MAX_ASSERTION_SECONDS:
            return refuse("Invalid JWT: the assertion must expire within {0} s".format(MAX_ASSERTION_SECONDS))
        if claims["jti"] in self.seen_jtis:
            return refuse("The assertion (jti {0}) was already used: replay refused".format(claims["jti"]))
        self.seen_jtis.add(claims["jti"])
        self.assertions.append(claims)
        return claims, None


def _http_server(port, handler_class):
    """An HTTP server on 127.0.0.1:``port`` (0: any), on the socket free_port() holds for it when there is one."""
    held = take_bound_socket(port) if port else None
    if held is None:
        return ThreadingHTTPServer(("127.0.0.1", port), handler_class)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_class, bind_and_activate=False)
    server.socket.close()
    server.socket = held
    server.server_address = held.getsockname()
    server.server_activate()
    return server


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
