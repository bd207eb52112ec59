# -*- coding: utf-8 -*-
"""S/MIME for outgoing mail: sign with the sender's PKCS#12 identity, encrypt to recipients' certificates.

Built on ``cryptography``'s PKCS#7 builders (python-smail, which the original
app used, imports oscrypto 1.3.0, and that fails at import on current OpenSSL).

``protect_entity`` takes the content entity bytes that ``compose`` made and
returns a new entity: ``multipart/signed`` (detached, SHA-256, chain included)
and/or ``application/pkcs7-mime`` enveloped data (AES). Every problem with a
bundle, password or certificate raises ``SmimeError`` before anything is sent.
"""

import base64
import binascii
import datetime
import hashlib
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from fn_outbound_email.lib.errors import SmimeError

LOG = logging.getLogger(__name__)

BUNDLE_KEY = "p12_signing_encrypting_cert"
PASSWORD_KEY = "p12_signing_encrypting_cert_password"
RECIPIENTS_INPUT = "mail_encryption_recipients"
CRLF = b"\r\n"
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_CERTIFICATE_LABELS = ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE")
_ANY_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class SigningIdentity:
    """The sender's key, certificate and the chain certificates that travel with each signature."""
    key: object = field(repr=False)
    cert: x509.Certificate
    chain: Tuple[x509.Certificate, ...] = ()


# --- the signing identity ---------------------------------------------------------------------------------
# Parsing a PKCS#12 runs its key derivation (slow on purpose), so loaded identities are kept per file version
# and password; the lock makes the cache safe with resilient-circuits num_workers > 1.
_IDENTITY_CACHE = {}
_IDENTITY_CACHE_LOCK = threading.Lock()
_IDENTITY_CACHE_SIZE = 8


def load_signing_identity(bundle, password=None):
    """The SigningIdentity in the PKCS#12 file ``bundle`` (raw DER or base64), checked for use now."""
    path = os.path.expanduser(str(bundle or "").strip())
    if not path:
        raise SmimeError("app.config [fn_outbound_email] {0} is empty".format(BUNDLE_KEY))
    try:
        status = os.stat(path)
    except OSError as err:
        raise SmimeError("The S/MIME bundle {0} = '{1}' cannot be read: {2}".format(
            BUNDLE_KEY, path, err.strerror or err))
    password_bytes = password.encode("utf-8") if isinstance(password, str) else (password or None)
    cache_key = (os.path.abspath(path), status.st_ino, status.st_mtime_ns, status.st_ctime_ns, status.st_size,
                 hashlib.sha256(password_bytes or b"").hexdigest())
    with _IDENTITY_CACHE_LOCK:
        identity = _IDENTITY_CACHE.get(cache_key)
        if identity is None:
            identity = _read_identity(path, password_bytes)
            if len(_IDENTITY_CACHE) >= _IDENTITY_CACHE_SIZE:
                _IDENTITY_CACHE.clear()
            _IDENTITY_CACHE[cache_key] = identity
    # checked on every use: a cached certificate can expire while the app runs
    _check_validity(identity.cert, "The signing certificate in {0} ('{1}')".format(BUNDLE_KEY, path))
    _warn_without_email_protection(identity.cert, "The signing certificate")
    return identity


def _read_identity(path, password):
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as err:
        raise SmimeError("The S/MIME bundle {0} = '{1}' cannot be read: {2}".format(
            BUNDLE_KEY, path, err.strerror or err))
    der = _bundle_der(content, path)
    key, cert, chain = _load_pkcs12(der, password, path)
    if key is None or cert is None:
        missing = " and ".join(name for name, value in (("private key", key), ("certificate", cert)) if value is None)
        raise SmimeError("The S/MIME bundle '{0}' has no {1}; export the sender's key together with its "
                         "certificate (PKCS#12 / .p12)".format(path, missing))
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise SmimeError("The private key in the S/MIME bundle '{0}' is a {1}; signing needs an RSA or EC "
                         "key".format(path, type(key).__name__))
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise SmimeError("The certificate in the S/MIME bundle '{0}' ({1}) does not belong to its private "
                         "key".format(path, cert.subject.rfc4514_string()))
    LOG.debug("Loaded the S/MIME signing identity %s from %s", cert.subject.rfc4514_string(), path)
    return SigningIdentity(key=key, cert=cert, chain=tuple(chain or ()))


def _bundle_der(content, path):
    """The PKCS#12 DER: the file as it is, or decoded from base64 (how App Host stores files)."""
    if content[:1] == b"\x30":          # a DER SEQUENCE; base64 text never starts with this byte
        return content
    try:
        der = base64.b64decode(b"".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if der[:1] != b"\x30":
        raise SmimeError("The S/MIME bundle '{0}' is neither a PKCS#12 file (DER) nor base64 of one; set {1} to "
                         "the .p12/.pfx file of the sender".format(path, BUNDLE_KEY))
    return der


def _load_pkcs12(der, password, path):
    # an unprotected bundle loads with no password; one protected by an empty password needs b""
    attempts = [password] if password else [None, b""]
    error = None
    for attempt in attempts:
        try:
            return pkcs12.load_key_and_certificates(der, attempt)
        except ValueError as err:
            error = err
    if "password" not in str(error).lower():       # cryptography: "Could not deserialize PKCS12 data"
        raise SmimeError("The S/MIME bundle '{0}' is corrupt: it is not readable PKCS#12 data; export it "
                         "again".format(path))
    if not password:
        raise SmimeError("The S/MIME bundle '{0}' is password-protected: set {1} in app.config".format(
            path, PASSWORD_KEY))
    raise SmimeError("Wrong password for the S/MIME bundle '{0}': check {1} in app.config".format(path, PASSWORD_KEY))


def _public_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- recipient certificates --------------------------------------------------------------------------------
def parse_recipient_certificates(pem_text):
    """The certificates in ``pem_text`` (one or more PEM blocks; text between blocks is ignored)."""
    text = pem_text.decode("utf-8", "replace") if isinstance(pem_text, bytes) else str(pem_text or "")
    certificates = []
    for number, match in enumerate(_PEM_BEGIN.finditer(text), start=1):
        label = match.group(1).strip()
        end_marker = "-----END {0}-----".format(label)
        end = text.find(end_marker, match.end())
        following = _PEM_BEGIN.search(text, match.end())
        if end < 0 or (following and following.start() < end):
            raise SmimeError("{0}: PEM block {1} ({2}) has no matching '{3}' line".format(
                RECIPIENTS_INPUT, number, label, end_marker))
        if label not in _CERTIFICATE_LABELS:
            # never echo the block: it may be a private key pasted by mistake
            raise SmimeError("{0}: PEM block {1} is a {2}, not a certificate".format(RECIPIENTS_INPUT, number, label))
        cert = _pem_block_certificate(text[match.end():end], trusted=label == "TRUSTED CERTIFICATE", number=number)
        _check_validity(cert, "{0}: certificate {1} ({2})".format(RECIPIENTS_INPUT, number,
                                                                  cert.subject.rfc4514_string()))
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise SmimeError("{0}: certificate {1} ({2}) has a {3} key; encryption supports RSA recipient keys "
                             "only".format(RECIPIENTS_INPUT, number, cert.subject.rfc4514_string(),
                                           type(cert.public_key()).__name__))
        _warn_without_email_protection(cert, "Recipient certificate {0}".format(number))
        certificates.append(cert)
    if not certificates:
        raise SmimeError("{0} holds no certificate: give one or more PEM certificates "
                         "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)".format(RECIPIENTS_INPUT))
    return certificates


def _pem_block_certificate(body, trusted, number):
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
        if trusted:
            # OpenSSL's TRUSTED CERTIFICATE is the certificate followed by its trust settings
            der = der[:_der_element_length(der)]
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError, IndexError) as err:
        raise SmimeError("{0}: certificate {1} cannot be parsed ({2}); paste the whole PEM block".format(
            RECIPIENTS_INPUT, number, _short(err)))


def _der_element_length(der):
    """Length in bytes (header included) of the DER element at the start of ``der``."""
    if len(der) < 2 or der[0] != 0x30:
        raise ValueError("not a DER sequence")
    first = der[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if not 0 < count <= 4 or len(der) < 2 + count:
        raise ValueError("bad DER length")
    return 2 + count + int.from_bytes(der[2:2 + count], "big")


def _short(err):
    return str(err).split("\n")[0][:120] or type(err).__name__


# --- certificate checks ------------------------------------------------------------------------------------
def _validity(cert):
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    utc = datetime.timezone.utc          # cryptography < 42
    return cert.not_valid_before.replace(tzinfo=utc), cert.not_valid_after.replace(tzinfo=utc)


def _check_validity(cert, what):
    not_before, not_after = _validity(cert)
    now = datetime.datetime.now(datetime.timezone.utc)
    if now > not_after:
        raise SmimeError("{0} expired on {1:%Y-%m-%d %H:%M} UTC (valid {2:%Y-%m-%d} to {1:%Y-%m-%d}, subject {3}); "
                         "renew it".format(what, not_after, not_before, cert.subject.rfc4514_string()))
    if now < not_before:
        raise SmimeError("{0} is not valid yet: valid from {1:%Y-%m-%d %H:%M} UTC to {2:%Y-%m-%d} (subject {3})"
                         .format(what, not_before, not_after, cert.subject.rfc4514_string()))


def _warn_without_email_protection(cert, what):
    """Mail clients may reject such a certificate, but the usage extension is advisory: warn, don't refuse."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages:
        LOG.warning("%s (%s) does not allow emailProtection in its extended key usage; mail clients may reject "
                    "the S/MIME message", what, cert.subject.rfc4514_string())


# --- protecting the content entity -------------------------------------------------------------------------
def protect_entity(entity_bytes, identity=None, recipients=None):
    """Sign (when ``identity``) and then encrypt (when ``recipients``) a MIME entity.

    ``entity_bytes`` is the content entity (its headers and body) as compose
    made it. Returns the protected entity, starting with a MIME-Version line
    so it is a complete message on its own (compose.assemble drops that line).
    """
    if identity is None and not recipients:
        return entity_bytes
    entity = _canonical(entity_bytes)
    if identity is not None:
        entity = _sign(entity, identity)
    if recipients:
        entity = _encrypt(entity, recipients)
    return b"MIME-Version: 1.0" + CRLF + entity


def _canonical(data):
    """CRLF line ends (what S/MIME signs and SMTP carries), so the signature holds on the wire."""
    line_ends = data.count(b"\r\n")
    if data.count(b"\n") == line_ends and data.count(b"\r") == line_ends:      # already canonical: no copy
        return data
    return _ANY_LINE_END.sub(CRLF, data)


def _sign(entity, identity):
    # set_data and add_signer must come before add_certificate: in cryptography they rebuild the builder
    # without the extra certificates added so far
    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity).add_signer(identity.cert, identity.key,
                                                                          hashes.SHA256())
    for chain_cert in identity.chain:
        builder = builder.add_certificate(chain_cert)
    try:
        signature = builder.sign(serialization.Encoding.DER,
                                 [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    except (TypeError, ValueError) as err:
        raise SmimeError("S/MIME signing failed: {0}".format(_short(err)))
    boundary = _boundary(entity)
    lines = [
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg="sha-256";',
        b' boundary="' + boundary + b'"',
        b"",
        b"This is an S/MIME signed message",
        b"",
        b"--" + boundary,
    ]
    signature_part = [
        b"--" + boundary,
        b'Content-Type: application/pkcs7-signature; name="smime.p7s"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7s"',
        b"",
    ]
    # the signed bytes are exactly the entity: the CRLF before the next boundary belongs to the delimiter
    return b"".join([CRLF.join(lines), CRLF, entity, CRLF, CRLF.join(signature_part), CRLF,
                     _base64_block(signature), b"--" + boundary + b"--", CRLF])


def _encrypt(entity, recipients):
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(entity)
    if hasattr(builder, "set_content_encryption_algorithm"):     # AES-256 where cryptography offers it
        builder = builder.set_content_encryption_algorithm(algorithms.AES256)
    try:
        for cert in recipients:
            builder = builder.add_recipient(cert)
        enveloped = builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    except (TypeError, ValueError) as err:
        raise SmimeError("S/MIME encryption failed: {0}".format(_short(err)))
    lines = [
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7m"',
        b"",
    ]
    return CRLF.join(lines) + CRLF + _base64_block(enveloped)


def _base64_block(data):
    """Base64 in 76-character lines, each ending in CRLF (encodebytes splits the lines in C)."""
    return base64.encodebytes(data).replace(b"\n", CRLF)


def _boundary(entity):
    while True:
        boundary = b"----=_smime_" + secrets.token_hex(16).encode("ascii")
        if boundary not in entity:
            return boundary
