# -*- coding: utf-8 -*-
"""The keys of the app-only OAuth2 grants, and the short-lived JWTs signed with them.

* ``client_certificate`` (client credentials grant, Microsoft Entra ID): a PEM file with the private key and
  its certificate; it signs RFC 7523 ``private_key_jwt`` client assertions whose header names the certificate
  by its ``x5t`` / ``x5t#S256`` thumbprints.
* ``service_account_file`` (JWT bearer grant, Google): the service account's JSON key; it signs the grant's
  assertion for the mailbox (``sub``) the service account acts as through domain-wide delegation.

PyJWT builds and signs the JWTs with cryptography's keys. A loaded key is cached per file version (path, inode,
size, modification time): settings are read for every function call, and a replaced file is read again.
"""

import datetime
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fn_outbound_email.lib.errors import SECTION, ConfigurationError

LOG = logging.getLogger(__name__)

ASSERTION_LIFETIME_SECONDS = 300      # an assertion is used at once; token endpoints allow at most 10 min or 1 h
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _setting(key, path):
    return "app.config [{0}] {1} = '{2}'".format(SECTION, key, path)


def _signing_algorithm(private_key, key, path):
    """RS256: what Entra ID takes for certificate credentials and Google for service account keys."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "RS256"
    raise ConfigurationError("{0}: the private key ({1}) must be an RSA key".format(
        _setting(key, path), type(private_key).__name__))


def _read(key, path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise ConfigurationError("{0} cannot be read: {1}".format(_setting(key, path), err.strerror or err))


def _file_version(key, path):
    """(absolute path, inode, size, mtime): the cache key of a key file, changed by a replaced file."""
    path = os.path.abspath(os.path.expanduser(path))
    try:
        status = os.stat(path)
    except OSError as err:
        raise ConfigurationError("{0} cannot be read: {1}".format(_setting(key, path), err.strerror or err))
    return path, status.st_ino, status.st_size, status.st_mtime_ns


def _private_key(data, password, key, path, password_key=None):
    try:
        return serialization.load_pem_private_key(data, password.encode("utf-8") if password else None)
    except TypeError:       # cryptography: encrypted without a password, or a password for a plain key
        if password:
            raise ConfigurationError("{0}: the private key is not encrypted; remove {1}".format(
                _setting(key, path), password_key))
        if not password_key:
            raise ConfigurationError("{0}: the private key is encrypted; download a new key".format(
                _setting(key, path)))
        raise ConfigurationError("{0}: the private key is encrypted; set {1} (a secret: $ENV or ^keyring)".format(
            _setting(key, path), password_key))
    except (ValueError, UnsupportedAlgorithm):
        if password:
            # a wrong password mostly fails the decryption, but now and then decrypts to garbage that fails parsing
            raise ConfigurationError("{0}: wrong {1}, the private key cannot be decrypted".format(
                _setting(key, path), password_key))
        raise ConfigurationError("{0} holds no readable PEM private key ('-----BEGIN PRIVATE KEY-----')".format(
            _setting(key, path)))


def _thumbprint(certificate, algorithm):
    """base64url (no padding) of a hash of the DER certificate, as the x5t / x5t#S256 JWS headers carry it."""
    digest = hashlib.new(algorithm, certificate.public_bytes(serialization.Encoding.DER)).digest()
    return jwt.utils.base64url_encode(digest).decode("ascii")


def _now():
    return int(time.time())


@dataclass(frozen=True)
class ClientCertificate:
    """The app registration's certificate and its private key; signs client assertions."""
    algorithm: str
    x5t: str                       # SHA-1 thumbprint (what Entra ID shows as the certificate's thumbprint)
    x5t_s256: str
    subject: str
    not_valid_after: datetime.datetime
    private_key: object = field(repr=False)

    def client_assertion(self, client_id, audience):
        """A fresh RFC 7523 client assertion: iss = sub = client_id, aud = the token endpoint, a new jti."""
        now = _now()
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": str(uuid.uuid4()),
                  "iat": now, "nbf": now, "exp": now + ASSERTION_LIFETIME_SECONDS}
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm,
                          headers={"x5t": self.x5t, "x5t#S256": self.x5t_s256})


@dataclass(frozen=True)
class ServiceAccount:
    """A Google service account key; signs JWT bearer grant assertions."""
    client_email: str
    client_id: Optional[str]       # the numeric unique ID domain-wide delegation is granted to
    token_uri: Optional[str]
    private_key_id: Optional[str]
    algorithm: str
    private_key: object = field(repr=False)

    def grant_assertion(self, subject, scope, audience):
        """A fresh assertion for the JWT bearer grant: act as ``subject`` with ``scope``."""
        now = _now()
        claims = {"iss": self.client_email, "sub": subject, "scope": scope, "aud": audience,
                  "jti": str(uuid.uuid4()), "iat": now, "exp": now + ASSERTION_LIFETIME_SECONDS}
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=headers)


def load_client_certificate(path, password=None):
    """The ClientCertificate in the PEM file ``path``; ConfigurationError naming client_certificate if unusable."""
    return _load_client_certificate(*_file_version("client_certificate", path), password)


@lru_cache(maxsize=16)
def _load_client_certificate(path, inode, size, mtime_ns, password):
    key = "client_certificate"
    data = _read(key, path)
    private_key = _private_key(data, password, key, path, password_key="client_certificate_password")
    algorithm = _signing_algorithm(private_key, key, path)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigurationError("{0} holds no PEM certificate ('-----BEGIN CERTIFICATE-----'); put the "
                                 "certificate uploaded to the app registration in the file with its key".format(
                                     _setting(key, path)))
    public = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    matching = [cert for cert in certificates if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public]
    if not matching:
        raise ConfigurationError("{0}: the private key does not belong to the certificate in the file".format(
            _setting(key, path)))
    certificate = matching[0]
    not_after = certificate.not_valid_after_utc
    if not_after < datetime.datetime.now(datetime.timezone.utc):
        LOG.warning("The client certificate in %s (%s) expired on %s: the token endpoint will refuse it; upload a "
                    "new certificate to the app registration and replace the file", path,
                    certificate.subject.rfc4514_string(), not_after.isoformat())
    return ClientCertificate(algorithm=algorithm, x5t=_thumbprint(certificate, "sha1"),
                             x5t_s256=_thumbprint(certificate, "sha256"),
                             subject=certificate.subject.rfc4514_string(), not_valid_after=not_after,
                             private_key=private_key)


def load_service_account(path):
    """The ServiceAccount of the JSON key file ``path``; ConfigurationError naming service_account_file if unusable."""
    return _load_service_account(*_file_version("service_account_file", path))


@lru_cache(maxsize=16)
def _load_service_account(path, inode, size, mtime_ns):
    key = "service_account_file"
    try:
        account = json.loads(_read(key, path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ConfigurationError("{0} is not a JSON file; give the service account's JSON key".format(
            _setting(key, path)))
    if not isinstance(account, dict):
        raise ConfigurationError("{0} is not a service account JSON key".format(_setting(key, path)))
    if "installed" in account or "web" in account:
        raise ConfigurationError("{0} is an OAuth client file, not a service account key: create a JSON key for "
                                 "the service account (Keys, Add key)".format(_setting(key, path)))
    if account.get("type", "service_account") != "service_account":
        raise ConfigurationError("{0} is a '{1}' credential, not a service account key (type "
                                 "service_account)".format(_setting(key, path), account.get("type")))
    missing = [name for name in ("client_email", "private_key")
               if not isinstance(account.get(name), str) or not account[name].strip()]
    if missing:
        raise ConfigurationError("{0} lacks {1}; download a new JSON key for the service account".format(
            _setting(key, path), ", ".join(missing)))
    private_key = _private_key(account["private_key"].encode("utf-8"), None, key, path)
    token_uri = account.get("token_uri")
    return ServiceAccount(client_email=account["client_email"].strip(),
                          client_id=str(account["client_id"]) if account.get("client_id") else None,
                          token_uri=token_uri.strip() if isinstance(token_uri, str) and token_uri.strip() else None,
                          private_key_id=account.get("private_key_id") or None,
                          algorithm=_signing_algorithm(private_key, key, path), private_key=private_key)
