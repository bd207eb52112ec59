# -*- coding: utf-8 -*-
"""Test certificates made with `cryptography`: a CA, server (TLS) and S/MIME identities.

Everything lives in memory until a test writes it under its own tmp_path.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EMAIL_PROTECTION = (ExtendedKeyUsageOID.EMAIL_PROTECTION,)
SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)


@dataclass
class Identity:
    key: object
    cert: x509.Certificate

    @property
    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name="fn_outbound_email test CA"):
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Identity(key, cert)


def issue_cert(ca, common_name, san_dns=(), san_ips=(), email=None, eku=EMAIL_PROTECTION,
               valid_days=30, expired=False):
    """A certificate signed by ``ca``; ``expired`` makes one that ended yesterday."""
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=valid_days)
    if expired:
        not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    names = [x509.DNSName(name) for name in san_dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ips]
    if email:
        names.append(x509.RFC822Name(email))
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return Identity(key, builder.sign(ca.key, hashes.SHA256()))


def tls_server_identity(ca):
    """A server certificate for localhost / 127.0.0.1."""
    return issue_cert(ca, "localhost", san_dns=("localhost",), san_ips=("127.0.0.1",), eku=SERVER_AUTH)


def tls_identity_for_names(ca, *dns_names):
    """A server certificate from ``ca`` valid only for ``dns_names`` (e.g. not for 127.0.0.1 or localhost)."""
    return issue_cert(ca, dns_names[0], san_dns=dns_names, eku=SERVER_AUTH)


def server_tls_context(identity, folder):
    """The TLS context of a test server presenting ``identity`` (its PEM files are written under ``folder``)."""
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(write_pem(folder / "{0}.pem".format(identity.cert.serial_number), identity.cert_pem),
                            write_pem(folder / "{0}.key".format(identity.cert.serial_number), identity.key_pem))
    return context


def write_pem(path, *pem_blobs):
    with open(path, "wb") as handle:
        handle.write(b"".join(pem_blobs))
    return str(path)


def p12_bytes(identity, ca=None, password: Optional[bytes] = None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return pkcs12.serialize_key_and_certificates(b"sender", identity.key, identity.cert,
                                                 [ca.cert] if ca else None, encryption)


def make_intermediate_ca(ca, common_name="fn_outbound_email test intermediate CA"):
    """A CA signed by ``ca``: certificates it issues verify against ``ca`` only when it travels along."""
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca.key, hashes.SHA256()))
    return Identity(key, cert)


class TlsPki:
    """One test CA (``ca_file``) and server TLS contexts: ``context`` for localhost/127.0.0.1, ``other_name_context``
    for a certificate issued only for OTHER_NAME."""

    OTHER_NAME = "mail.other.example"

    def __init__(self, folder):
        self.ca = make_ca()
        self.ca_file = write_pem(folder / "ca.pem", self.ca.cert_pem)
        self._contexts = {"localhost": server_tls_context(tls_server_identity(self.ca), folder),
                          "other": server_tls_context(tls_identity_for_names(self.ca, self.OTHER_NAME), folder)}

    @property
    def context(self):
        return self._contexts["localhost"]

    @property
    def other_name_context(self):
        return self._contexts["other"]
