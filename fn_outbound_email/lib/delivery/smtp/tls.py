# -*- coding: utf-8 -*-
"""TLS for SMTP: the verification app.config asks for, and the names a server's certificate is issued for.

The certificate names make the fix of a host-name mismatch concrete (lib/delivery/smtp/explain.py).
"""

import logging
import ssl

from fn_outbound_email.lib.errors import DeliveryError

LOG = logging.getLogger(__name__)

# OpenSSL's reasons when the other side does not speak TLS at all (a plain SMTP greeting instead of a ServerHello)
NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                   "HTTP_REQUEST")
HOSTNAME_MISMATCH_CODES = (62, 64)    # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def tls_context(ssl_verify):
    """Verification as app.config says: system CAs, a CA bundle, or (warned) none."""
    if ssl_verify is False:
        LOG.warning("smtp_ssl_cafile = false: the SMTP server's TLS certificate is NOT verified")
        return unverified_context()
    if ssl_verify is True:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ssl_verify)
    except ssl.SSLError as err:
        raise DeliveryError("smtp_ssl_cafile = '{0}' holds no CA certificate in PEM form ({1}); give the PEM bundle "
                            "of the CA that issued the SMTP server's certificate".format(ssl_verify,
                                                                                     err.reason or err))


def unverified_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def certificate_names(der):
    """The DNS names and IP addresses a certificate (DER) is issued for; its common name when it has no SAN."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName) + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return names or [attribute.value for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]

