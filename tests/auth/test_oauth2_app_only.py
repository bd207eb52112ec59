# -*- coding: utf-8 -*-
"""App-only OAuth2: the client credentials grant (client_secret, or a certificate-signed client assertion, as
Microsoft 365 SMTP.SendAsApp takes it) and the JWT bearer grant (a Google service account).

Real keys and certificates (cryptography), a real local token endpoint that verifies every assertion's signature
with the registered public key and its aud, iss, sub, exp and jti (tests/support/oauth2_server.py), and aiosmtpd whose
XOAUTH2 accepts only the tokens that endpoint issued, for the mailboxes they were issued for.
"""

import base64
import hashlib
import json
import logging
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from resilient_lib import RequestsCommon
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fn_outbound_email.lib.auth import oauth2, xoauth2
from fn_outbound_email.lib.auth.oauth2 import OAuth2TokenProvider
from fn_outbound_email.lib.auth.xoauth2 import OAuth2Authenticator
from fn_outbound_email.lib.delivery.smtp.transport import SmtpTransport
from fn_outbound_email.lib.errors import ConfigurationError, DeliveryError, MailError, OAuth2Error
from fn_outbound_email.lib.mailer import Mailer, MailRequest, build_transport
from fn_outbound_email.lib.settings import load_settings
from fn_outbound_email.util.selftest import selftest_function
from tests.auth.test_oauth2 import Clock, CommandRun, tokens_tried
from tests.support import config_section, pki
from tests.support.function_runner import app_config, call_function
from tests.support.oauth2_server import CLIENT_ID, CLIENT_SECRET, GMAIL_SCOPE, FakeOAuth2Server
from tests.support.smtp_server import SMTP_USER, SmtpTestServer, free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

M365_SCOPE = "https://outlook.office365.com/.default"
SERVICE_ACCOUNT = "smtp-sender@project-1.iam.gserviceaccount.com"
SERVICE_KEY_ID = "0123456789abcdef0123456789abcdef01234567"
CERT_PASSWORD = "pem-Passw0rd-7"
GRANTS = ("client_secret", "client_certificate", "service_account")
APP_SMTP_PORT = free_port()
APP_OAUTH_PORT = free_port()

resilient_mock = SoarMock
config_data = ""           # each TestSendEmail2 class sets the app.config of its grant (see grant_app_config)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(autouse=True)
def fresh_token_caches(monkeypatch):
    monkeypatch.setattr(oauth2, "_caches", {})


# --- keys and the files an administrator puts on the app host ------------------------------------------------
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key, password=None):
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else \
        serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def service_account_json(key, token_uri, key_id=SERVICE_KEY_ID, **changes):
    """A key file as Google's console downloads it."""
    account = {"type": "service_account", "project_id": "project-1", "private_key_id": key_id,
               "private_key": pem_of(key).decode(), "client_email": SERVICE_ACCOUNT, "client_id": "1098765432101234",
               "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}
    account.update(changes)
    return json.dumps({key_: value for key_, value in account.items() if value is not None})


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oauth2-keys")
    ca = pki.make_ca("Self-signed app certificates")
    app, stranger = pki.issue_cert(ca, "smtp-app", eku=()), pki.issue_cert(ca, "another-app", eku=())
    files = {
        "app": pki.write_pem(folder / "app.pem", app.key_pem, app.cert_pem),
        "app_encrypted": pki.write_pem(folder / "app-encrypted.pem", pem_of(app.key, CERT_PASSWORD), app.cert_pem),
        "stranger": pki.write_pem(folder / "stranger.pem", stranger.cert_pem, stranger.key_pem),
        "mismatched": pki.write_pem(folder / "mismatched.pem", app.key_pem, stranger.cert_pem),
        "key_only": pki.write_pem(folder / "key-only.pem", app.key_pem),
        "ec_key": pki.write_pem(folder / "ec.pem", pem_of(ec.generate_private_key(ec.SECP256R1())), app.cert_pem),
        "cert_only": pki.write_pem(folder / "cert-only.pem", app.cert_pem),
    }
    return {"folder": folder, "app": app, "stranger": stranger, "files": files, "service_key": rsa_key(),
            "other_service_key": rsa_key()}


def write_service_account(keys, name, token_uri, key=None, **changes):
    path = keys["folder"] / name
    path.write_text(service_account_json(key or keys["service_key"], token_uri, **changes))
    return str(path)


def register(oauth, keys):
    """The provider-side set-up: the certificate uploaded, the service account and its delegation."""
    oauth.register_client_certificate(keys["app"].cert)
    oauth.register_service_account(SERVICE_ACCOUNT, SERVICE_KEY_ID, keys["service_key"].public_key(),
                                   delegated=[(SMTP_USER, GMAIL_SCOPE)])


@pytest.fixture
def oauth(keys):
    with FakeOAuth2Server() as server:
        register(server, keys)
        yield server


@pytest.fixture
def smtp(oauth):
    with SmtpTestServer(xoauth2=oauth.accepts) as server:
        yield server


def grant_settings(grant, keys, token_url):
    """The app.config keys of a grant; the mailbox comes from from_email_address (no smtp_user)."""
    if grant == "client_secret":
        return {"oauth2_grant": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "token_url": token_url, "scope": M365_SCOPE}
    if grant == "client_certificate":
        return {"oauth2_grant": "client_credentials", "client_id": CLIENT_ID, "token_url": token_url,
                "client_certificate": keys["files"]["app"], "scope": M365_SCOPE}
    # one key file per token endpoint (each test's endpoint has its own port)
    name = "service-{0}.json".format(urlsplit(token_url).port)
    return {"oauth2_grant": "jwt_bearer", "scope": GMAIL_SCOPE,
            "service_account_file": write_service_account(keys, name, token_url)}


def section(grant, keys, oauth, smtp_port, **values):
    configs = {"from_email_address": "SOAR Notifier <{0}>".format(SMTP_USER),
               "smtp_allow_plaintext_auth": "true",     # the XOAUTH2 test server has no TLS
               # a new session per send, so each send authenticates: these tests are about the tokens
               "smtp_connection_reuse": "false"}
    configs.update(grant_settings(grant, keys, oauth.token_url))
    configs.update(values)
    return config_section.section(smtp_port, **configs)


def mailer(grant, keys, oauth, smtp, clock=None, **values):
    settings = load_settings(section(grant, keys, oauth, smtp.port, **values))
    provider = OAuth2TokenProvider(settings.oauth2, None, clock=clock or Clock())
    return Mailer(settings, soar=None, transport=SmtpTransport(
        settings, OAuth2Authenticator(settings.oauth2.subject, provider)))


def send(mailer_, subject="App-only OAuth2", to="alice@example.com"):
    return mailer_.send(MailRequest(incident_id=INCIDENT_ID, to=to, sender="soar@example.com", subject=subject,
                                    body="Sent with an app-only token"))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion_of(form):
    return form.get("client_assertion") or form.get("assertion")


# --- each grant: tokens, caching, what the endpoint receives ------------------------------------------------
@pytest.mark.parametrize("grant", GRANTS)
def test_each_grant_sends_two_mails_with_one_token(grant, keys, oauth, smtp):
    sender = mailer(grant, keys, oauth, smtp)
    send(sender, "first")
    send(sender, "second")
    assert [m.message["Subject"] for m in smtp.messages] == ["first", "second"]
    assert all(m.auth_user == SMTP_USER for m in smtp.messages)       # the XOAUTH2 user is the mailbox
    assert len(oauth.token_requests) == 1
    tried = tokens_tried(smtp)
    assert len(tried) == 2 and tried[0] == tried[1] and tried[0][1] is True
    form = oauth.token_requests[0]
    if grant == "client_secret":
        assert form == {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                        "scope": M365_SCOPE}
    elif grant == "client_certificate":
        assert set(form) == {"grant_type", "client_id", "client_assertion_type", "client_assertion", "scope"}
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assert form["grant_type"] == "client_credentials" and form["scope"] == M365_SCOPE
    else:
        assert set(form) == {"grant_type", "assertion"}      # Google: client and scope travel in the assertion
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_client_assertion_is_rfc7523_with_both_thumbprints(keys, oauth, smtp):
    send(mailer("client_certificate", keys, oauth, smtp))
    assertion = oauth.token_requests[0]["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    der = keys["app"].cert.public_bytes(serialization.Encoding.DER)
    assert header == {"alg": "RS256", "typ": "JWT", "x5t": b64url(hashlib.sha1(der).digest()),
                      "x5t#S256": b64url(hashlib.sha256(der).digest())}
    claims = jwt.decode(assertion, keys["app"].cert.public_key(), algorithms=["RS256"], audience=oauth.token_url)
    assert claims["iss"] == claims["sub"] == CLIENT_ID and claims["aud"] == oauth.token_url
    assert 0 < claims["exp"] - claims["iat"] <= 600 and claims["nbf"] == claims["iat"]
    assert uuid.UUID(claims["jti"]).version == 4
    assert oauth.assertions == [claims]                   # the endpoint verified the same


def test_service_account_assertion_acts_for_the_mailbox(keys, oauth, smtp):
    send(mailer("service_account", keys, oauth, smtp, oauth2_subject=SMTP_USER, from_email_address="x@example.org"))
    assertion = oauth.token_requests[0]["assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "typ": "JWT", "kid": SERVICE_KEY_ID}
    claims = jwt.decode(assertion, keys["service_key"].public_key(), algorithms=["RS256"], audience=oauth.token_url)
    assert claims["iss"] == SERVICE_ACCOUNT and claims["sub"] == SMTP_USER and claims["scope"] == GMAIL_SCOPE
    assert 0 < claims["exp"] - claims["iat"] <= 600 and uuid.UUID(claims["jti"]).version == 4
    assert smtp.handler.xoauth2_attempts[0][0] == SMTP_USER      # oauth2_subject wins over from_email_address


@pytest.mark.parametrize("grant", GRANTS)
def test_expired_token_is_replaced_with_a_fresh_assertion(grant, keys, oauth, smtp):
    clock = Clock()
    sender = mailer(grant, keys, oauth, smtp, clock=clock)
    send(sender)
    clock.now += 3600 - 61
    send(sender)
    assert len(oauth.token_requests) == 1
    clock.now += 2                    # within a minute of expiry: replaced before use
    send(sender)
    assert len(oauth.token_requests) == 2 and len(smtp.messages) == 3
    tried = [token for token, _ in tokens_tried(smtp)]
    assert tried[0] == tried[1] != tried[2]
    if grant != "client_secret":
        jtis = [claims["jti"] for claims in oauth.assertions]
        assert len(jtis) == 2 and jtis[0] != jtis[1]


@pytest.mark.parametrize("grant", GRANTS)
def test_revoked_token_gets_one_new_token_and_one_retry(grant, keys, oauth, smtp):
    sender = mailer(grant, keys, oauth, smtp)
    send(sender, "first")
    oauth.revoke_access_tokens()
    send(sender, "second")
    assert [accepted for _, accepted in tokens_tried(smtp)] == [True, False, True]
    assert len(oauth.token_requests) == 2
    assert [m.message["Subject"] for m in smtp.messages] == ["first", "second"]


@pytest.mark.parametrize("grant, first, second", [
    ("client_secret", {"scope": M365_SCOPE}, {"scope": ""}),
    ("client_secret", {}, {"client_secret": "another-Secret-8"}),
    ("client_certificate", {}, {"client_certificate": "stranger"}),
], ids=["scope", "secret", "certificate"])
def test_settings_differing_in_one_credential_or_scope_get_their_own_token(grant, first, second, keys, oauth, smtp):
    def provider(values):
        values = dict(values)
        if "client_certificate" in values:
            values["client_certificate"] = keys["files"][values["client_certificate"]]
        return OAuth2TokenProvider(load_settings(section(grant, keys, oauth, smtp.port, **values)).oauth2)

    token = provider(first).access_token()
    assert not token.cached and len(oauth.token_requests) == 1
    assert provider(first).access_token() == token._replace(cached=True)       # the same settings share it
    try:
        other = provider(second).access_token()
    except OAuth2Error as err:            # a wrong secret or certificate: refused by the endpoint, so it was asked
        assert "invalid_client" in str(err)
    else:
        assert not other.cached and other.value != token.value
    assert len(oauth.token_requests) == 2
    assert (oauth.token_requests[1].get("scope"), oauth.token_requests[1].get("client_secret")) == (
        second.get("scope", first.get("scope", M365_SCOPE)) or None,
        second.get("client_secret", CLIENT_SECRET) if grant == "client_secret" else None)


@pytest.mark.parametrize("grant, change", [
    ("client_secret", {"client_secret": "another-Secret-8"}),
    ("client_secret", {"client_id": "another-client"}),
    ("client_secret", {"token_url": "http://127.0.0.1:9/token"}),
    ("client_certificate", {"client_certificate": "stranger"}),
    ("client_secret", {"oauth2_grant": "refresh_token", "refresh_token": "refresh-Unknown-1"}),
], ids=["secret", "client_id", "token_url", "certificate", "grant"])
def test_a_pooled_session_serves_only_the_oauth2_settings_it_logged_in_with(grant, change, keys, oauth, smtp):
    """A configuration that cannot get a token must fail, not send on a session another one logged in."""
    send(mailer(grant, keys, oauth, smtp, smtp_connection_reuse="true"))
    change = dict(change)
    if "client_certificate" in change:
        change["client_certificate"] = keys["files"][change["client_certificate"]]
    with pytest.raises(MailError):          # the token request (or the login) fails: nothing is sent
        send(mailer(grant, keys, oauth, smtp, smtp_connection_reuse="true", **change))
    assert len(smtp.messages) == 1


def test_encrypted_certificate_key_with_its_password(keys, oauth, smtp):
    send(mailer("client_certificate", keys, oauth, smtp, client_certificate=keys["files"]["app_encrypted"],
                client_certificate_password=CERT_PASSWORD))
    assert len(smtp.messages) == 1 and len(oauth.assertions) == 1


def test_replaced_certificate_file_is_read_again(keys, oauth, smtp, tmp_path):
    path = tmp_path / "rotating.pem"
    pki.write_pem(path, keys["app"].key_pem, keys["app"].cert_pem)
    clock = Clock()
    sender = mailer("client_certificate", keys, oauth, smtp, clock=clock, client_certificate=str(path))
    send(sender)
    # the administrator uploads a new certificate and replaces the file
    oauth.register_client_certificate(keys["stranger"].cert)
    pki.write_pem(path, keys["stranger"].key_pem, keys["stranger"].cert_pem, b"\n")
    clock.now += 3600
    send(sender)
    thumbprints = [jwt.get_unverified_header(form["client_assertion"])["x5t#S256"] for form in oauth.token_requests]
    assert len(set(thumbprints)) == 2 and len(smtp.messages) == 2


# --- the token endpoint's checks are real ------------------------------------------------------------------
def post_token(oauth, form):
    return requests.post(oauth.token_url, data=form, timeout=10)


@pytest.mark.parametrize("grant", ("client_certificate", "service_account"))
def test_a_replayed_assertion_is_refused(grant, keys, oauth, smtp):
    send(mailer(grant, keys, oauth, smtp))
    replay = post_token(oauth, oauth.token_requests[0])
    assert replay.status_code in (400, 401) and "already used: replay refused" in replay.json()["error_description"]


def test_an_assertion_signed_by_another_key_is_refused(keys, oauth):
    # the registered certificate's thumbprints in the header, but signed with a key that is not its own
    der = keys["app"].cert.public_bytes(serialization.Encoding.DER)
    headers = {"x5t": b64url(hashlib.sha1(der).digest()), "x5t#S256": b64url(hashlib.sha256(der).digest())}
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": oauth.token_url, "jti": str(uuid.uuid4()),
              "iat": 2000000000 - 10, "exp": 2000000000}
    forged = jwt.encode(claims, keys["stranger"].key, algorithm="RS256", headers=headers)
    answer = post_token(oauth, {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                "client_assertion": forged})
    assert answer.status_code == 401 and answer.json()["error_description"] == "Invalid JWT Signature."
    assert oauth.valid_access_tokens == set()


# --- failures: each with a reason that says what to fix ------------------------------------------------------
def test_unregistered_certificate_is_invalid_client_aadsts700027(keys, oauth, smtp):
    with pytest.raises(OAuth2Error) as raised:
        send(mailer("client_certificate", keys, oauth, smtp, client_certificate=keys["files"]["stranger"]))
    reason = str(raised.value)
    assert "OAuth2 token request (client_credentials grant with client_certificate) failed" in reason
    assert "invalid_client: AADSTS700027: Client assertion contains an invalid signature." in reason
    assert "the one uploaded to the app registration" in reason
    assert smtp.messages == [] and smtp.handler.xoauth2_attempts == []


def test_service_account_with_a_deleted_key_is_invalid_grant(keys, oauth, smtp, tmp_path):
    # same key id, another key: the endpoint checks the signature with the registered public key
    path = write_service_account(keys, "old-key.json", oauth.token_url, key=keys["other_service_key"])
    with pytest.raises(OAuth2Error) as raised:
        send(mailer("service_account", keys, oauth, smtp, service_account_file=path))
    reason = str(raised.value)
    assert "(jwt_bearer grant with service_account_file)" in reason
    assert "invalid_grant: Invalid JWT Signature." in reason and "was deleted or replaced" in reason
    assert smtp.messages == []


@pytest.mark.parametrize("grant", ("client_certificate", "service_account"))     # a secret names no audience
def test_wrong_audience_is_refused_with_the_reason(grant, keys, oauth, smtp):
    # the same endpoint under another name: the assertion names what app.config says, the endpoint itself differs
    alias = oauth.token_url.replace("127.0.0.1", "localhost")
    with pytest.raises(OAuth2Error) as raised:
        send(mailer(grant, keys, oauth, smtp, **({"token_url": alias} if grant == "client_certificate" else
                                                  {"service_account_file": write_service_account(
                                                      keys, "alias.json", alias)})))
    assert "audience (aud) is not this token endpoint" in str(raised.value)
    assert smtp.messages == []


@pytest.mark.parametrize("grant", GRANTS)
def test_token_endpoint_down_names_it_and_the_grant(grant, keys, oauth, smtp):
    down = "http://127.0.0.1:{0}/token".format(free_port())
    values = {"service_account_file": write_service_account(keys, "down.json", down)} \
        if grant == "service_account" else {"token_url": down}
    with pytest.raises(OAuth2Error) as raised:
        send(mailer(grant, keys, oauth, smtp, **values))
    reason = str(raised.value)
    assert "Cannot connect to the OAuth2 token endpoint {0}".format(down) in reason
    assert "grant with" in reason and smtp.messages == []


def test_wrong_client_secret_is_invalid_client_with_the_fix(keys, oauth, smtp):
    with pytest.raises(OAuth2Error) as raised:
        send(mailer("client_secret", keys, oauth, smtp, client_secret="a-Secret-ID-not-the-value"))
    reason = str(raised.value)
    assert "invalid_client" in reason and "the secret's Value, not its Secret ID" in reason
    assert "a-Secret-ID-not-the-value" not in reason


def test_missing_domain_wide_delegation_is_unauthorized_client(keys, oauth, smtp):
    oauth.delegations[SERVICE_ACCOUNT] = set()
    with pytest.raises(OAuth2Error) as raised:
        send(mailer("service_account", keys, oauth, smtp))
    reason = str(raised.value)
    assert "unauthorized_client: Client is unauthorized to retrieve access tokens" in reason
    assert "domain-wide delegation is missing" in reason


def test_app_without_permission_on_the_mailbox_is_refused_by_smtp_with_the_exchange_fix(keys, oauth, smtp):
    oauth.app_mailboxes = {"someone-else@example.com"}     # Add-MailboxPermission was done for another mailbox
    with pytest.raises(DeliveryError) as raised:
        send(mailer("client_certificate", keys, oauth, smtp))
    reason = str(raised.value)
    assert "refused XOAUTH2 for user '{0}'".format(SMTP_USER) in reason and "535" in reason
    assert "SMTP.SendAsApp" in reason and "Add-MailboxPermission" in reason and "New-ServicePrincipal" in reason
    assert len(smtp.handler.xoauth2_attempts) == 1 and smtp.messages == []     # a fresh token is not retried


def test_no_secret_assertion_or_token_in_logs_or_results(keys, oauth, smtp, caplog):
    outcomes = []
    with caplog.at_level(logging.DEBUG):
        for grant in GRANTS:
            settings = load_settings(section(grant, keys, oauth, smtp.port))
            sender = Mailer(settings, soar=None, requests_common=RequestsCommon(opts={}, function_opts={}))
            outcomes.append(send(sender))
    assert len(oauth.token_requests) == 3 and len(smtp.messages) == 3
    secrets = [CLIENT_SECRET] + [assertion_of(form) for form in oauth.token_requests if assertion_of(form)] + \
        [token for token, _ in tokens_tried(smtp)] + \
        [xoauth2.xoauth2_initial_response(SMTP_USER, token) for token, _ in tokens_tried(smtp)]
    private_key_lines = [line for line in keys["app"].key_pem.decode().splitlines()[1:-1]] + \
        [line for line in pem_of(keys["service_key"]).decode().splitlines()[1:-1]]
    assert len(secrets) == 1 + 2 + 3 + 3
    text = caplog.text + repr(outcomes) + repr([load_settings(section(g, keys, oauth, 25)) for g in GRANTS])
    for secret in secrets + private_key_lines:
        assert secret not in text
    assert "new access token" in caplog.text        # the log did record the token requests


# --- 200 sends over 4 threads: one token request per token lifetime -------------------------------------------
def test_200_sends_over_4_threads_make_one_token_request_per_token_lifetime(keys, oauth, smtp):
    clock = Clock()
    sender = mailer("client_certificate", keys, oauth, smtp, clock=clock)
    oauth.delay = 0.05               # the first callers of each lifetime race while the request is open

    def run(numbers):
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda n: send(sender, "Load {0}".format(n), "user{0}@example.com".format(n)),
                                 numbers))

    outcomes = run(range(100))
    assert len(oauth.token_requests) == 1
    clock.now += 3600                 # the first token has expired
    outcomes += run(range(100, 200))
    assert len(oauth.token_requests) == 2
    assert [outcome.accepted for outcome in outcomes] == [["user{0}@example.com".format(n)] for n in range(200)]
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == sorted("user{0}@example.com".format(n) for n in range(200))
    tried = tokens_tried(smtp)
    assert all(accepted for _, accepted in tried) and len({token for token, _ in tried}) == 2


# --- configurations that cannot work: a clear ConfigurationError at start-up (and in selftest) ----------------
def config_error_cases(keys, tmp_path):
    files = keys["files"]
    not_json = tmp_path / "not.json"
    not_json.write_text("-----BEGIN PRIVATE KEY-----\n")
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(json.dumps({"installed": {"client_id": "x.apps.googleusercontent.com"}}))
    no_key = write_service_account(keys, "no-key.json", "https://oauth2.example.com/token", private_key=None)
    no_uri = write_service_account(keys, "no-uri.json", None)
    cc = {"oauth2_grant": "client_credentials", "client_id": CLIENT_ID, "token_url": "https://login.example/token"}
    jb = {"oauth2_grant": "jwt_bearer", "scope": GMAIL_SCOPE}
    return {
        "unknown grant": ({"oauth2_grant": "password"}, "oauth2_grant = 'password' is not one of refresh_token, "
                                                        "client_credentials, jwt_bearer"),
        "refresh grant without refresh token": ({"oauth2_grant": "refresh_token", "client_id": CLIENT_ID,
                                                 "token_url": "https://login.example/token"},
                                                "oauth2_grant = refresh_token, so OAuth2 also needs: refresh_token"),
        "client credentials without secret or certificate": (cc, "needs exactly one client credential: "
                                                                 "client_secret or client_certificate"),
        "client credentials with both": (dict(cc, client_secret="s", client_certificate=files["app"]),
                                         "client_secret or client_certificate (a PEM file with the private key and "
                                         "certificate), not both"),
        "client credentials without client_id": ({"oauth2_grant": "client_credentials", "client_secret": "s",
                                                  "token_url": "https://login.example/token"},
                                                 "so OAuth2 also needs: client_id"),
        "certificate file missing": (dict(cc, client_certificate="/nonexistent/app.pem"),
                                     "client_certificate = '/nonexistent/app.pem' cannot be read: No such file"),
        "certificate without its key": (dict(cc, client_certificate=files["cert_only"]),
                                        "holds no readable PEM private key"),
        "key without its certificate": (dict(cc, client_certificate=files["key_only"]), "holds no PEM certificate"),
        "not an RSA key": (dict(cc, client_certificate=files["ec_key"]), "the private key (ECPrivateKey) must be an RSA key"),
        "key of another certificate": (dict(cc, client_certificate=files["mismatched"]),
                                       "the private key does not belong to the certificate"),
        "encrypted key without password": (dict(cc, client_certificate=files["app_encrypted"]),
                                           "the private key is encrypted; set client_certificate_password"),
        "encrypted key, wrong password": (dict(cc, client_certificate=files["app_encrypted"],
                                               client_certificate_password="wrong"),
                                          "wrong client_certificate_password"),
        "certificate without grant": ({"client_id": CLIENT_ID, "client_certificate": files["app"]},
                                      "client_certificate is set but oauth2_grant is not: set oauth2_grant = "
                                      "client_credentials"),
        "service account without grant": ({"service_account_file": no_uri},
                                          "set oauth2_grant = jwt_bearer"),
        "jwt bearer without key file": (jb, "oauth2_grant = jwt_bearer, so OAuth2 also needs: service_account_file"),
        "jwt bearer without scope": ({"oauth2_grant": "jwt_bearer", "service_account_file": no_uri},
                                     "also needs: scope (Gmail: scope = https://mail.google.com/)"),
        "key file unreadable": (dict(jb, service_account_file=str(tmp_path / "absent.json")),
                                "service_account_file = '{0}' cannot be read".format(tmp_path / "absent.json")),
        "key file not JSON": (dict(jb, service_account_file=str(not_json)), "is not a JSON file"),
        "OAuth client file": (dict(jb, service_account_file=str(client_file)),
                              "is an OAuth client file, not a service account key"),
        "key file without private_key": (dict(jb, service_account_file=no_key), "lacks private_key"),
        "key file without token_uri": (dict(jb, service_account_file=no_uri), "has no token_uri: set token_url"),
        "no mailbox to send as": (dict(cc, client_secret="s", from_email_address=None),
                                  "needs the mailbox to send as: set oauth2_subject"),
        "oauth2_subject not an address": (dict(cc, client_secret="s", oauth2_subject="mailer"),
                                          "oauth2_subject: 'mailer' is not a valid email address"),
    }


CONFIG_CASES = ("unknown grant", "refresh grant without refresh token", "client credentials without secret or "
                "certificate", "client credentials with both", "client credentials without client_id",
                "certificate file missing", "certificate without its key", "key without its certificate",
                "not an RSA key", "key of another certificate", "encrypted key without password", "encrypted key, wrong password",
                "certificate without grant", "service account without grant", "jwt bearer without key file",
                "jwt bearer without scope", "key file unreadable", "key file not JSON", "OAuth client file",
                "key file without private_key", "key file without token_uri", "no mailbox to send as",
                "oauth2_subject not an address")


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_configuration_that_cannot_work_fails_at_start_up_and_in_selftest(case, keys, tmp_path):
    cases = config_error_cases(keys, tmp_path)
    assert set(cases) == set(CONFIG_CASES)
    values, message = cases[case]
    configs = {"smtp_server": "127.0.0.1", "smtp_port": "25", "from_email_address": SMTP_USER}
    configs.update(values)
    configs = {key: value for key, value in configs.items() if value is not None}
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"fn_outbound_email": configs})
    assert message in str(raised.value)
    result = selftest_function({"fn_outbound_email": configs})
    assert result["state"] == "failure" and message in result["reason"]


# --- selftest: a token and XOAUTH2 for every grant -----------------------------------------------------------
@pytest.mark.parametrize("grant", GRANTS)
def test_selftest_gets_a_token_and_authenticates_for_every_grant(grant, keys, oauth, smtp):
    assert selftest_function(section(grant, keys, oauth, smtp.port)) == {"state": "success"}
    assert len(oauth.token_requests) == 1
    assert [(user, accepted) for user, _, accepted in smtp.handler.xoauth2_attempts] == [(SMTP_USER, True)]
    assert smtp.messages == []


@pytest.mark.parametrize("grant, description", [
    ("client_secret", "client_credentials grant with client_secret"),
    ("client_certificate", "client_credentials grant with client_certificate"),
    ("service_account", "jwt_bearer grant with service_account_file"),
])
def test_selftest_failure_names_the_grant(grant, description, keys, oauth, smtp):
    oauth.error = (400, {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."})
    result = selftest_function(section(grant, keys, oauth, smtp.port))
    assert result["state"] == "failure"
    assert "invalid_request: AADSTS90002: Tenant not found." in result["reason"] and description in result["reason"]
    oauth.error = None
    oauth.revoke_access_tokens()
    smtp.handler.accept = lambda user, token: False          # the token is fine, the SMTP server refuses it
    result = selftest_function(section(grant, keys, oauth, smtp.port))
    assert result["state"] == "failure" and "refused XOAUTH2" in result["reason"]
    assert result["reason"].endswith("(authentication: OAuth2 {0})".format(description))


# --- outbound-email oauth2-token --test ----------------------------------------------------------------------
def write_app_config(path, grant, keys, oauth, **values):
    section_ = section(grant, keys, oauth, 25, **values)["fn_outbound_email"]
    path.write_text("[resilient]\nhost = soar.example.invalid\norg = Org\napi_key_id = a\napi_key_secret = b\n\n"
                    "[fn_outbound_email]\n" + "".join("{0} = {1}\n".format(*item) for item in section_.items()))
    return str(path)


@pytest.mark.parametrize("grant, scopes", [
    ("client_secret", "Scopes: SMTP.SendAsApp (the token's application permissions, roles claim)"),
    ("client_certificate", "Scopes: SMTP.SendAsApp (the token's application permissions, roles claim)"),
    ("service_account", "Scopes: https://mail.google.com/ (requested; the endpoint did not list the granted scopes)"),
])
def test_token_test_prints_lifetime_and_scopes_never_the_token(grant, scopes, keys, oauth, monkeypatch, tmp_path):
    oauth.expires_in = 3599
    secret = {}
    if grant == "client_secret":      # secrets resolve as resilient-circuits resolves them
        monkeypatch.setenv("TEST_APP_ONLY_SECRET", CLIENT_SECRET)
        secret = {"client_secret": "$TEST_APP_ONLY_SECRET"}
    config = write_app_config(tmp_path / "app.config", grant, keys, oauth, **secret)
    command = CommandRun(["oauth2-token", "--test", "-c", config], monkeypatch)
    assert command.finish() == 0, command.err.text
    out = command.out.text
    assert "Success: the token endpoint issued an access token (not shown)." in out
    assert re.search(r"^Expires in 3599 s, at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", out, re.M), out
    assert scopes in out and "Sends as (XOAUTH2 user): {0}".format(SMTP_USER) in out
    assert len(oauth.token_requests) == 1
    issued = next(iter(oauth.valid_access_tokens))
    assert issued not in out and issued not in command.err.text and CLIENT_SECRET not in out


def test_token_test_without_admin_consent_says_the_token_grants_nothing(keys, oauth, monkeypatch, tmp_path):
    oauth.roles = []
    config = write_app_config(tmp_path / "app.config", "client_certificate", keys, oauth)
    command = CommandRun(["oauth2-token", "--test", "-c", config], monkeypatch)
    assert command.finish() == 0, command.err.text
    assert "none in the token (no roles or scp claim): admin consent for the permission may be missing" in \
        command.out.text


def test_token_test_failure_exits_1_with_the_reason(keys, oauth, monkeypatch, tmp_path):
    config = write_app_config(tmp_path / "app.config", "client_certificate", keys, oauth,
                              client_certificate=keys["files"]["stranger"])
    command = CommandRun(["oauth2-token", "--test", "-c", config], monkeypatch)
    assert command.finish() == 1
    assert "AADSTS700027" in command.err.text and "Success" not in command.out.text


def test_token_test_refuses_sign_in_flags_and_needs_oauth2(keys, oauth, monkeypatch, tmp_path):
    config = write_app_config(tmp_path / "app.config", "client_secret", keys, oauth)
    command = CommandRun(["oauth2-token", "--test", "-c", config, "--client-id", "x"], monkeypatch)
    assert command.finish() == 1 and "--test uses app.config only; leave out --client-id" in command.err.text
    plain = write_app_config(tmp_path / "plain.config", "client_secret", keys, oauth, oauth2_grant=None,
                             client_id=None)
    command = CommandRun(["oauth2-token", "--test", "-c", plain], monkeypatch)
    assert command.finish() == 1 and "OAuth2 is not configured" in command.err.text
    assert oauth.token_requests == []


# --- send_email2 end to end, one app per grant ---------------------------------------------------------------
@pytest.fixture(scope="module")
def app_servers(keys):
    with FakeOAuth2Server(port=APP_OAUTH_PORT) as oauth_server:
        register(oauth_server, keys)
        with SmtpTestServer(xoauth2=oauth_server.accepts, port=APP_SMTP_PORT) as smtp_server:
            yield oauth_server, smtp_server


@pytest.fixture(scope="class", autouse=True)
def grant_app_config(request, keys):
    """pytest-resilient-circuits reads a class's app.config from the module's config_data when the class's app
    starts: each class here sets the one of its grant."""
    grant = getattr(request.cls, "grant", None)
    if grant is None:
        yield
        return
    token_url = "http://127.0.0.1:{0}/token".format(APP_OAUTH_PORT)
    values = grant_settings(grant, keys, token_url)
    request.module.config_data = app_config(APP_SMTP_PORT, from_email_address="SOAR Notifier <soar@example.com>",
                                            oauth2_subject=SMTP_USER, smtp_allow_plaintext_auth=True,
                                            smtp_connection_reuse=False, **values)
    yield
    request.module.config_data = ""


class SendEmail2WithGrant:
    grant = None

    def test_send_email2_delivers_with_the_grant(self, circuits_app, app_servers, caplog):
        oauth, smtp = app_servers
        before_requests, before_messages = len(oauth.token_requests), len(smtp.messages)
        with caplog.at_level(logging.DEBUG):
            results = [call_function(circuits_app, "send_email2", {
                "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com",
                "mail_subject": "{0} {1}".format(self.grant, number), "mail_body": "Body"}) for number in (1, 2)]
        assert [result["success"] for result in results] == [True, True], results
        received = smtp.messages[before_messages:]
        assert [m.message["Subject"] for m in received] == ["{0} {1}".format(self.grant, n) for n in (1, 2)]
        assert all(m.auth_user == SMTP_USER for m in received)
        assert str(received[0].message["From"]) == "SOAR Notifier <soar@example.com>"
        forms = oauth.token_requests[before_requests:]
        assert len(forms) == 1                   # one token for both calls
        credential = {"client_secret": "client_secret", "client_certificate": "client_assertion",
                      "service_account": "assertion"}[self.grant]
        assert credential in forms[0]            # the app of this class runs with this class's grant
        secrets = [CLIENT_SECRET] + [value for value in (assertion_of(forms[0]),) if value] + \
            [token for _, token, _ in smtp.handler.xoauth2_attempts]
        for secret in secrets:
            assert secret not in caplog.text and secret not in str(results)


class TestSendEmail2ClientSecret(SendEmail2WithGrant):
    grant = "client_secret"


class TestSendEmail2ClientCertificate(SendEmail2WithGrant):
    grant = "client_certificate"


class TestSendEmail2ServiceAccount(SendEmail2WithGrant):
    grant = "service_account"


def test_build_transport_logs_in_as_the_subject(keys, oauth, smtp):
    settings = load_settings(section("client_secret", keys, oauth, smtp.port, smtp_user="login@example.com",
                                     oauth2_subject=SMTP_USER))
    build_transport(settings).check_connection()
    assert smtp.handler.xoauth2_attempts[0][0] == SMTP_USER and settings.oauth2.subject == SMTP_USER


def test_jwt_bearer_token_url_overrides_the_key_files_token_uri(keys, oauth, smtp):
    path = write_service_account(keys, "elsewhere.json", "https://oauth2.googleapis.com/token")
    settings = load_settings(section("service_account", keys, oauth, smtp.port, service_account_file=path,
                                     token_url=oauth.token_url))
    assert settings.oauth2.token_url == oauth.token_url
    send(mailer("service_account", keys, oauth, smtp, service_account_file=path, token_url=oauth.token_url))
    assert oauth.assertions[0]["aud"] == oauth.token_url and len(smtp.messages) == 1


def test_app_only_oauth2_settings_repr_hides_secrets(keys, oauth):
    settings = load_settings(section("client_certificate", keys, oauth, 25, client_certificate=keys["files"][
        "app_encrypted"], client_certificate_password=CERT_PASSWORD))
    assert CERT_PASSWORD not in repr(settings) and os.path.basename(keys["files"]["app_encrypted"]) in repr(settings)
