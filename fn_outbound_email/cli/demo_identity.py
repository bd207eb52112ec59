# -*- coding: utf-8 -*-
"""A throwaway S/MIME identity for ``outbound-email demo --sign``.

A fresh CA and a sender certificate (emailProtection) signed by it, made in
memory for one run. Only the CA certificate (public) is meant to be saved,
so the signature can be verified; the PKCS#12 bundle with the private key
lives in a temporary folder the demo deletes.
"""

import datetime
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30      # long enough to verify the saved .eml later, short enough to be obviously a test


@dataclass
class DemoIdentity:
    ca_cert_pem: bytes
    p12_bundle: bytes
    password: str

    def __repr__(self):     # never show the password
        return "DemoIdentity(<throwaway S/MIME identity>)"


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fn_outbound_email demo (not trusted)")])


def _key_usage(signing_certs):
    return x509.KeyUsage(digital_signature=not signing_certs, content_commitment=False,
                         key_encipherment=not signing_certs, data_encipherment=False, key_agreement=False,
                         key_cert_sign=signing_certs, crl_sign=signing_certs, encipher_only=False, decipher_only=False)


def make_demo_identity(email_address):
    """A CA and a sender certificate for ``email_address``, the sender's in a password-protected PKCS#12."""
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=VALID_DAYS)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("fn_outbound_email demo CA")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(signing_certs=True), critical=True)
               .sign(ca_key, hashes.SHA256()))

    sender_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sender_cert = (x509.CertificateBuilder().subject_name(_name(email_address)).issuer_name(ca_name)
                   .public_key(sender_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(_key_usage(signing_certs=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email_address)]), critical=False)
                   .sign(ca_key, hashes.SHA256()))

    password = secrets.token_urlsafe(18)
    bundle = pkcs12.serialize_key_and_certificates(
        b"demo sender", sender_key, sender_cert, [ca_cert],
        serialization.BestAvailableEncryption(password.encode("utf-8")))
    return DemoIdentity(ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM), p12_bundle=bundle,
                        password=password)
