# -*- coding: utf-8 -*-
"""`outbound-email oauth2-token`: obtain the OAuth2 refresh_token for app.config, or test the configured grant.

The authorization-code flow for administrators: sign in as the mailbox in a
browser; the provider sends the browser back to a callback server this command
runs on 127.0.0.1. A callback whose ``state`` is not the random one sent is not
for this sign-in (stale or forged): it gets an error page and is ignored, and
the command keeps waiting. The callback server answers each connection on a
thread of its own, with a per-request timeout, so a local connection that
sends nothing cannot hold up the browser's return. The code is exchanged at token_url (with PKCE)
through RequestsCommon, and the refresh token is printed with the app.config
line to paste.

``--test`` fetches one access token with the grant app.config configures
(any of them) and prints its lifetime and scopes, never the token.
"""

import base64
import datetime
import hashlib
import html
import os
import secrets
import sys
import threading
import webbrowser
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from resilient_lib import RequestsCommon

from fn_outbound_email.cli.common import (DEFAULT_CONFIG_HELP, EXIT_FAILED, EXIT_OK, BackgroundServer,
                                          default_app_config_path, error, read_app_config)
from fn_outbound_email.lib.auth.oauth2 import OAuth2TokenProvider, request_token
from fn_outbound_email.lib.errors import ConfigurationError, OAuth2Error
from fn_outbound_email.lib.settings import SECTION, load_oauth2_settings

COMMAND = "oauth2-token"
DEFAULT_WAIT_SECONDS = 300
CALLBACK_REQUEST_TIMEOUT = 10    # seconds the callback server waits for one request's bytes (a browser sends at once)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
# (app.config key, flag): flags win over app.config
CLIENT_KEYS = (("client_id", "--client-id"), ("client_secret", "--client-secret"), ("auth_url", "--auth-url"),
               ("token_url", "--token-url"), ("scope", "--scope"))
REQUIRED_KEYS = ("client_id", "auth_url", "token_url")


class FlowError(Exception):
    """The sign-in did not produce a refresh token; the message says why and what to do."""


class ForeignCallback(FlowError):
    """A callback whose state is not this sign-in's: answered with an error page, then ignored."""


@dataclass(frozen=True)
class ClientSettings:
    client_id: str
    auth_url: str
    token_url: str
    scope: Optional[str] = None
    client_secret: Optional[str] = None


def register(subparsers):
    parser = subparsers.add_parser(
        COMMAND, help="obtain the OAuth2 refresh_token for app.config (sign in once in a browser)",
        description="Run the OAuth2 authorization-code flow: print (and open) the sign-in URL, receive the "
                    "browser's return on a local callback, check its state, exchange the code at token_url and "
                    "print the refresh_token line for the [{0}] section of app.config. Settings come from that "
                    "section and/or the flags (flags win). With --test: no sign-in, one access token with the "
                    "configured oauth2_grant (refresh_token, client_credentials or jwt_bearer).".format(SECTION))
    parser.add_argument("-c", "--config", metavar="APP_CONFIG",
                        help="app.config to read client_id, client_secret, auth_url, token_url and scope from "
                             "({0})".format(DEFAULT_CONFIG_HELP))
    for key, flag in CLIENT_KEYS:
        parser.add_argument(flag, dest=key, metavar=key.upper(), help="overrides {0} of app.config".format(key))
    redirect = parser.add_mutually_exclusive_group()
    redirect.add_argument("--redirect-port", type=int, metavar="PORT",
                          help="port of the local callback; the redirect URI is http://localhost:PORT/ "
                               "(default: a free port)")
    redirect.add_argument("--redirect-uri", metavar="URI",
                          help="the redirect URI registered for the client, e.g. http://localhost:8400/callback "
                               "(http on localhost or 127.0.0.1; the callback listens on its port and path)")
    parser.add_argument("--prompt", metavar="VALUE",
                        help="the OpenID prompt parameter, e.g. consent (Google issues a new refresh token only after "
                             "a consent screen) or select_account")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS, metavar="SECONDS",
                        help="how long to wait for the browser to come back (default: %(default)g)")
    parser.add_argument("--no-browser", action="store_true",
                        help="only print the sign-in URL (open it yourself, e.g. on another machine with an SSH "
                             "tunnel to the callback port)")
    parser.add_argument("--test", action="store_true",
                        help="no sign-in: fetch one access token with the oauth2_grant of app.config (-c) and "
                             "print its lifetime and scopes (never the token)")
    parser.set_defaults(run=run)


def run(args):
    if args.test:
        return run_token_test(args)
    port = args.redirect_port or 0
    try:
        opts, client = _client_settings(args)
        requests_common = RequestsCommon(opts=opts, function_opts=opts.get(SECTION) or {})
        host, port, path = _callback_address(args)
        with CallbackServer(host, port, path) as callback:
            flow = AuthorizationFlow(client, callback.redirect_uri, requests_common, prompt=args.prompt)
            callback.handle = flow.complete
            print("Open this URL in a browser and sign in as the mailbox the app sends from (smtp_user):")
            print()
            print(flow.authorization_url)
            print()
            print("Waiting up to {0:g} s for the browser to return to {1} ...".format(args.timeout,
                                                                                     callback.redirect_uri), flush=True)
            if not args.no_browser:
                webbrowser.open(flow.authorization_url)
            refresh_token = callback.wait(args.timeout)
    except (FlowError, ConfigurationError) as err:
        error(COMMAND, err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        error(COMMAND, "interrupted before the browser came back; no refresh token")
        return EXIT_FAILED
    except OSError as err:       # the callback port is taken, or may not be bound
        error(COMMAND, "Cannot listen for the callback on 127.0.0.1 port {0}: {1}; choose another --redirect-port "
                       "or --redirect-uri".format(err.filename or port, err.strerror or err))
        return EXIT_FAILED
    print("Success: the token endpoint issued a refresh token for client_id {0}.".format(client.client_id))
    print("Put this line in the [{0}] section of app.config (keep it secret, like a password):".format(SECTION))
    print()
    print("refresh_token = {0}".format(refresh_token))
    print()
    return EXIT_OK


def run_token_test(args):
    """--test: one access token with the configured grant; prints what it is good for, never the token."""
    flags = [flag for key, flag in CLIENT_KEYS if getattr(args, key)] + \
        [flag for flag, given in (("--redirect-port", args.redirect_port), ("--redirect-uri", args.redirect_uri),
                                  ("--prompt", args.prompt)) if given]
    try:
        if flags:
            raise ConfigurationError("--test uses app.config only; leave out {0}".format(" ".join(flags)))
        path = _app_config_path(args)
        if not path:
            raise ConfigurationError("--test needs an app.config (none found; use -c FILE)")
        opts = read_app_config(path)
        settings = load_oauth2_settings(opts)
        if settings is None:
            raise ConfigurationError("OAuth2 is not configured in [{0}] of {1}: set oauth2_grant (or client_id, "
                                     "token_url and refresh_token)".format(SECTION, path))
        print("OAuth2 {0}; token endpoint {1}".format(settings.grant_description, settings.token_url), flush=True)
        provider = OAuth2TokenProvider(settings, RequestsCommon(opts=opts, function_opts=opts.get(SECTION) or {}))
        token = provider.access_token()
    except (ConfigurationError, OAuth2Error) as err:
        error(COMMAND, err)
        return EXIT_FAILED
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=token.lifetime)
    print("Success: the token endpoint issued an access token (not shown).")
    print("Expires in {0} s, at {1:%Y-%m-%d %H:%M:%S} UTC".format(token.lifetime, expiry))
    print("Scopes: {0}".format(describe_scopes(token, settings.scope)))
    if settings.subject or settings.grant != "refresh_token":
        print("Sends as (XOAUTH2 user): {0}".format(settings.subject))
    return EXIT_OK


def describe_scopes(token, requested):
    """What the token grants: the endpoint's scope answer, else the claims of a JWT access token (read, not
    verified: display only), else the scope that was asked for."""
    if token.scope:
        return "{0} (granted)".format(token.scope)
    import jwt
    try:
        claims = jwt.decode(token.value, options={"verify_signature": False})
    except jwt.PyJWTError:      # opaque tokens (Google's) are not JWTs
        claims = {}
    roles, delegated = claims.get("roles"), claims.get("scp")
    if isinstance(roles, list) and roles:
        return "{0} (the token's application permissions, roles claim)".format(" ".join(map(str, roles)))
    if isinstance(delegated, str) and delegated:
        return "{0} (the token's delegated permissions, scp claim)".format(delegated)
    if claims:
        return "none in the token (no roles or scp claim): admin consent for the permission may be missing"
    return "{0} (requested; the endpoint did not list the granted scopes)".format(requested or "none requested")


def _app_config_path(args):
    """-c, else the default app.config when it exists, else None."""
    return default_app_config_path(args.config)


def _client_settings(args):
    """(opts of the app.config or {}, ClientSettings from app.config and flags)."""
    path = _app_config_path(args)
    opts = read_app_config(path) if path else {}
    section = opts.get(SECTION) or {}
    values = {}
    for key, _ in CLIENT_KEYS:
        value = getattr(args, key) or section.get(key)
        values[key] = str(value).strip() if value not in (None, "") else None
    missing = [key for key in REQUIRED_KEYS if not values[key]]
    if missing:
        flags = dict(CLIENT_KEYS)
        raise ConfigurationError("Missing {0}: give {1} or set {2} in [{3}] of {4}".format(
            ", ".join(missing), " ".join("{0} ...".format(flags[key]) for key in missing), ", ".join(missing),
            SECTION, "the app.config {0}".format(path) if path else "an app.config (none found; use -c FILE)"))
    for key in ("auth_url", "token_url"):
        if urlsplit(values[key]).scheme not in ("https", "http") or not urlsplit(values[key]).netloc:
            raise ConfigurationError("{0} '{1}' is not an http(s) URL".format(key, values[key]))
    return opts, ClientSettings(**values)


def _callback_address(args):
    """(host, port, path) the callback server listens on; port 0 means any free port."""
    if not args.redirect_uri:
        return "localhost", args.redirect_port or 0, "/"
    parts = urlsplit(args.redirect_uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or not port:
        raise FlowError("--redirect-uri must be http://localhost:PORT/... or http://127.0.0.1:PORT/... (this "
                        "command receives the callback itself), not {0!r}".format(args.redirect_uri))
    return parts.hostname, port, parts.path or "/"


class AuthorizationFlow:
    """One sign-in: the URL with a random state and PKCE challenge, and the checks and code exchange after it."""

    def __init__(self, client, redirect_uri, requests_common, prompt=None):
        self._client = client
        self._prompt = prompt
        self._redirect_uri = redirect_uri
        self._requests_common = requests_common
        self._state = secrets.token_urlsafe(24)
        self._verifier = secrets.token_urlsafe(48)

    @property
    def authorization_url(self):
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self._verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"response_type": "code", "client_id": self._client.client_id, "redirect_uri": self._redirect_uri,
                  "state": self._state, "code_challenge": challenge, "code_challenge_method": "S256",
                  "access_type": "offline"}      # Google's way to ask for a refresh token; others ignore it
        if self._client.scope:
            params["scope"] = self._client.scope
        if self._prompt:
            params["prompt"] = self._prompt
        parts = urlsplit(self._client.auth_url)
        query = urlencode(parse_qsl(parts.query) + list(params.items()))
        return urlunsplit(parts._replace(query=query))

    def complete(self, query):
        """The refresh token for the callback's ``query``, or FlowError."""
        # compare_digest takes str only when it is ASCII: a callback may carry any text, so bytes are compared
        if not secrets.compare_digest(query.get("state", "").encode("utf-8", "surrogatepass"), self._state.encode()):
            raise ForeignCallback("The callback's state does not match the one this command sent: the answer is not "
                                  "for this sign-in (a stale or forged link). It was ignored; nothing was exchanged.")
        if query.get("error"):
            reason = query["error"] + (": " + query["error_description"] if query.get("error_description") else "")
            if query["error"] == "access_denied":
                raise FlowError("The sign-in was denied ({0}): consent was not given. Run the command again and "
                                "accept, or ask an administrator to grant consent for the application.".format(reason))
            raise FlowError("The authorization server refused the sign-in: {0}; check client_id, scope and that "
                            "the redirect URI {1} is registered for the client".format(reason, self._redirect_uri))
        if not query.get("code"):
            raise FlowError("The callback carries neither a code nor an error")
        client = self._client
        form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": self._redirect_uri,
                "client_id": client.client_id, "code_verifier": self._verifier}
        if client.client_secret:
            form["client_secret"] = client.client_secret
        try:
            answer = request_token(self._requests_common, client.token_url, form)
        except OAuth2Error as err:
            raise FlowError("The code exchange failed: {0}".format(err))
        refresh_token = answer.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise FlowError("The token endpoint issued an access token but no refresh_token: ask for offline access "
                            "(Microsoft: add offline_access to the scope; Google: run again with --prompt consent)")
        return refresh_token


class CallbackServer(BackgroundServer):
    """The redirect target on 127.0.0.1: hands the first answer to ``handle`` and shows its outcome."""

    def __init__(self, host, port, path):
        self.handle = None                 # query dict -> refresh token, or raises FlowError
        self._host = host
        self._path = path
        self._done = threading.Event()
        self._result = None                # the refresh token, or the FlowError
        self.ignored = 0                   # callbacks with a wrong state (stale or forged)
        self._answering = threading.Lock()  # requests are answered on threads of their own, one at a time
        server = ThreadingHTTPServer(("127.0.0.1", port), _callback_handler(self))
        server.daemon_threads = True       # a connection still open does not hold up the command's end
        super().__init__(server, name="oauth2-callback")

    @property
    def redirect_uri(self):
        return "http://{0}:{1}{2}".format(self._host, self.port, self._path)

    def wait(self, timeout):
        """The refresh token; FlowError for a failed sign-in or when the browser does not come back in time."""
        if not self._done.wait(timeout):
            ignored = " ({0} callback(s) with a wrong state were ignored: not from this sign-in)".format(
                self.ignored) if self.ignored else ""
            raise FlowError("No answer reached {0} within {1:g} s{3}. Open the URL above in a browser that can reach "
                            "this port (on another machine: ssh -L {2}:localhost:{2} to this one), or raise "
                            "--timeout".format(self.redirect_uri, timeout, self.port, ignored))
        if isinstance(self._result, FlowError):
            raise self._result
        return self._result

    def answer(self, path, query):
        """(HTTP status, page title, text) for a request to the callback server."""
        with self._answering:
            return self._answer(path, query)

    def _answer(self, path, query):
        if path != self._path or self._done.is_set():
            return 404, "Not found", "This is not the sign-in callback of outbound-email oauth2-token."
        if not any(key in query for key in ("code", "error", "state")):
            return 200, "Waiting", "outbound-email oauth2-token is waiting for the sign-in to return here."
        try:
            self._result = self.handle(query)
            page = 200, "Success", "The refresh token was obtained. Return to the terminal to copy it into " \
                                   "app.config; you can close this window."
        except ForeignCallback as err:
            # a forged or stale link must not end the sign-in the administrator is doing: keep waiting
            self.ignored += 1
            print("outbound-email {0}: ignored a callback with a wrong state (not from this sign-in); still "
                  "waiting".format(COMMAND), file=sys.stderr, flush=True)
            return 400, "Failed", "{0} The sign-in started in the terminal is still waiting.".format(err)
        except FlowError as err:
            self._result = err
            page = 400, "Failed", "Getting the refresh token failed: {0} The terminal shows the same.".format(err)
        self._done.set()
        return page


def _callback_handler(callback):
    class Handler(BaseHTTPRequestHandler):
        timeout = CALLBACK_REQUEST_TIMEOUT       # the socket's timeout: a silent connection is dropped after it

        def do_GET(self):
            parts = urlsplit(self.path)
            status, title, text = callback.answer(parts.path, dict(parse_qsl(parts.query)))
            page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{0}</title></head><body>"
                    "<h1>{0}</h1><p>{1}</p></body></html>").format(html.escape(title), html.escape(text)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):     # the request line carries the authorization code: not printed
            pass

    return Handler
