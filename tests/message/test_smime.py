# -*- coding: utf-8 -*-
"""S/MIME: signing and encryption checked by the openssl command line, bundle and certificate errors.

Mail goes to a real aiosmtpd server on 127.0.0.1, through the Mailer directly
(one app.config per case) and through send_email2 with pytest-resilient-circuits
and the SOAR mock. Certificates come from tests/support/pki.py; files live in tmp_path.
"""

import base64
import email
import email.policy
import logging
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from fn_outbound_email.lib.errors import SmimeError
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.message import smime
from fn_outbound_email.lib.settings import SECTION, load_settings
from tests.support import pki
from tests.support.function_runner import app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command line")

SMTP_PORT = free_port()
P12_PASSWORD = "p12-Secret-Passw0rd"
BODY = "<p>Incident &amp; details</p>\n<p>.a line starting with a dot\nFrom the start of a line</p>"
ATTACHMENT_TEXT = "name,value\nhost,10.0.0.1\n"
config_data = ""            # written by TestSendEmail2Smime.app_config before circuits_app reads it
resilient_mock = SoarMock


# --- certificates and files --------------------------------------------------------------------------------
class Pki:
    """A root CA, an intermediate that issues the sender, recipients and broken certificates."""

    def __init__(self):
        self.root = pki.make_ca()
        self.intermediate = pki.make_intermediate_ca(self.root)
        self.sender = pki.issue_cert(self.intermediate, "SOAR Notifier", email="soar@example.com")
        self.alice = pki.issue_cert(self.root, "Alice", email="alice@example.com")
        self.bob = pki.issue_cert(self.root, "Bob", email="bob@example.com")
        self.expired = pki.issue_cert(self.root, "Expired Recipient", expired=True)
        self.server_only = pki.issue_cert(self.root, "TLS Only", eku=pki.SERVER_AUTH)

    def bundle(self, identity=None, password=P12_PASSWORD, chain=True):
        return pki.p12_bytes(identity or self.sender, self.intermediate if chain else None,
                             password.encode() if password else None)


@pytest.fixture(scope="module")
def certs():
    return Pki()


def write_bytes(path, data):
    path.write_bytes(data)
    return str(path)


def wrapped_base64(data, line_end="\n"):
    """Base64 as App Host and the base64 tool write it: 76 columns, line ends in between."""
    text = base64.b64encode(data).decode()
    return (line_end.join(text[i:i + 76] for i in range(0, len(text), 76)) + line_end).encode()


@pytest.fixture
def files(tmp_path, certs):
    """Paths of the PEM files openssl needs: root CA, and each recipient's certificate and key."""
    paths = {"ca": pki.write_pem(tmp_path / "ca.pem", certs.root.cert_pem)}
    for name in ("alice", "bob"):
        identity = getattr(certs, name)
        paths[name + "_cert"] = pki.write_pem(tmp_path / (name + ".pem"), identity.cert_pem)
        paths[name + "_key"] = pki.write_pem(tmp_path / (name + ".key"), identity.key_pem)
    return paths


def openssl(*arguments):
    return subprocess.run(["openssl"] + list(arguments), capture_output=True, timeout=60)


def verify(message_path, ca_path, out_path):
    """openssl smime -verify; returns the verified content."""
    result = openssl("smime", "-verify", "-in", message_path, "-CAfile", ca_path, "-out", out_path)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Verification successful" in result.stderr
    with open(out_path, "rb") as handle:
        return handle.read()


def decrypt(message_path, cert_path, key_path, out_path):
    result = openssl("smime", "-decrypt", "-in", message_path, "-recip", cert_path, "-inkey", key_path,
                     "-out", out_path)
    assert result.returncode == 0, result.stderr.decode()
    with open(out_path, "rb") as handle:
        return handle.read()


# --- sending through the Mailer and a real SMTP server ---------------------------------------------------
def send_direct(bundle_path=None, password=P12_PASSWORD, recipients=None, body=BODY):
    """One send with its own app.config; returns what the Mailer reports."""
    config = {"smtp_server": "127.0.0.1", "smtp_port": str(SMTP_PORT), "smtp_conn_timeout": "5",
              "smtp_retries": "0", "from_email_address": "SOAR Notifier <soar@example.com>"}
    if bundle_path:
        config["p12_signing_encrypting_cert"] = bundle_path
    if password:
        config["p12_signing_encrypting_cert_password"] = password
    mailer = Mailer(load_settings({SECTION: config}), soar=None)     # no template, no attachment: no SOAR call
    return mailer.send(MailRequest(incident_id=INCIDENT_ID, to="alice@example.com, bob@example.com",
                                   subject="Signed", body=body, encryption_recipients=recipients))


def received_file(server, tmp_path):
    assert len(server.messages) == 1
    return write_bytes(tmp_path / "received.eml", server.messages[0].data)


def test_signed_mail_verifies_with_openssl_and_carries_the_chain(server, certs, files, tmp_path):
    bundle = write_bytes(tmp_path / "sender.p12", certs.bundle())
    outcome = send_direct(bundle)

    assert (outcome.signed, outcome.encrypted) == (True, False)
    eml = received_file(server, tmp_path)
    message = server.messages[0].message
    assert message.get_content_type() == "multipart/signed"
    assert message.get_param("micalg") == "sha-256"
    assert message.get_param("protocol") == "application/pkcs7-signature"
    assert message["Subject"] == "Signed" and message["MIME-Version"] == "1.0"
    assert server.messages[0].data.count(b"MIME-Version:") == 1
    # the intermediate CA is only in the signature: verifying against the root alone proves it travels along
    content = verify(eml, files["ca"], str(tmp_path / "content.txt"))
    assert b"Incident &amp; details" in content and b"multipart/alternative" in content
    extracted = openssl("smime", "-pk7out", "-in", eml, "-out", str(tmp_path / "p7.pem"))
    assert extracted.returncode == 0
    certificates = openssl("pkcs7", "-print_certs", "-noout", "-in", str(tmp_path / "p7.pem"))
    assert b"CN = SOAR Notifier" in certificates.stdout
    assert b"CN = fn_outbound_email test intermediate CA" in certificates.stdout


def test_a_changed_byte_breaks_the_signature(server, certs, files, tmp_path):
    send_direct(write_bytes(tmp_path / "sender.p12", certs.bundle()))
    data = server.messages[0].data
    changed = data.replace(b"Incident &amp; details", b"Incident &amp; detail5")
    assert changed != data
    tampered = write_bytes(tmp_path / "tampered.eml", changed)
    result = openssl("smime", "-verify", "-in", tampered, "-CAfile", files["ca"], "-out", os.devnull)
    assert result.returncode != 0 and b"Verification successful" not in result.stderr


def test_signed_and_encrypted_mail_decrypts_and_the_inner_signature_verifies(server, certs, files, tmp_path):
    outcome = send_direct(write_bytes(tmp_path / "sender.p12", certs.bundle()),
                          recipients=certs.alice.cert_pem.decode())

    assert (outcome.signed, outcome.encrypted) == (True, True)
    eml = received_file(server, tmp_path)
    message = server.messages[0].message
    assert message.get_content_type() == "application/pkcs7-mime"
    assert message.get_param("smime-type") == "enveloped-data"
    assert b"Incident" not in server.messages[0].data
    inner = decrypt(eml, files["alice_cert"], files["alice_key"], str(tmp_path / "inner.eml"))
    assert inner.startswith(b"Content-Type: multipart/signed")
    content = verify(str(tmp_path / "inner.eml"), files["ca"], str(tmp_path / "content.txt"))
    assert b"Incident &amp; details" in content
    printed = openssl("cms", "-cmsout", "-print", "-in", eml)
    assert b"aes-256-cbc" in printed.stdout


def test_encryption_without_a_bundle_is_not_signed(server, certs, files, tmp_path):
    outcome = send_direct(recipients=certs.alice.cert_pem.decode(), body="Plain secret text")

    assert (outcome.signed, outcome.encrypted) == (False, True)
    inner = decrypt(received_file(server, tmp_path), files["alice_cert"], files["alice_key"],
                    str(tmp_path / "inner.eml"))
    assert inner.startswith(b"Content-Type: text/plain") and b"Plain secret text" in inner


def test_two_certificates_in_one_input_both_decrypt(server, certs, files, tmp_path):
    # a comma and a note between the blocks: the input is split on the PEM markers, not on commas
    pem = certs.alice.cert_pem.decode() + ",\nBob's certificate:\n" + certs.bob.cert_pem.decode()
    send_direct(write_bytes(tmp_path / "sender.p12", certs.bundle()), recipients=pem)

    eml = received_file(server, tmp_path)
    for name in ("alice", "bob"):
        inner = decrypt(eml, files[name + "_cert"], files[name + "_key"], str(tmp_path / (name + ".eml")))
        assert inner.startswith(b"Content-Type: multipart/signed")
        verify(str(tmp_path / (name + ".eml")), files["ca"], os.devnull)


def test_trusted_certificate_marker_is_accepted(server, certs, files, tmp_path):
    trusted = openssl("x509", "-in", files["bob_cert"], "-trustout", "-addtrust", "emailProtection")
    assert trusted.returncode == 0 and b"BEGIN TRUSTED CERTIFICATE" in trusted.stdout

    assert smime.parse_recipient_certificates(trusted.stdout.decode()) == [certs.bob.cert]
    send_direct(recipients=trusted.stdout.decode(), body="For Bob")
    inner = decrypt(received_file(server, tmp_path), files["bob_cert"], files["bob_key"], str(tmp_path / "bob.eml"))
    assert b"For Bob" in inner


@pytest.mark.parametrize("encoding", ["der", "base64-lf", "base64-crlf", "base64-one-line"])
def test_bundle_as_der_or_base64_signs(server, certs, files, tmp_path, encoding):
    der = certs.bundle()
    content = {"der": der, "base64-lf": wrapped_base64(der), "base64-crlf": wrapped_base64(der, "\r\n"),
               "base64-one-line": base64.b64encode(der)}[encoding]
    outcome = send_direct(write_bytes(tmp_path / "sender.p12", content))

    assert outcome.signed is True
    verify(received_file(server, tmp_path), files["ca"], os.devnull)


def test_bundle_without_password(server, certs, files, tmp_path):
    outcome = send_direct(write_bytes(tmp_path / "open.p12", certs.bundle(password=None)), password=None)
    assert outcome.signed is True
    verify(received_file(server, tmp_path), files["ca"], os.devnull)


# --- every bad case: a clear error, nothing reaches the server -------------------------------------------
BAD_BUNDLES = {
    "wrong password": (lambda c: c.bundle(password="another-password"), P12_PASSWORD,
                       ["Wrong password", "p12_signing_encrypting_cert_password"]),
    "password missing": (lambda c: c.bundle(), None, ["password-protected", "p12_signing_encrypting_cert_password"]),
    "random bytes": (lambda c: os.urandom(600), P12_PASSWORD, ["neither a PKCS#12 file (DER) nor base64"]),
    "text": (lambda c: b"this is not a certificate bundle\n", P12_PASSWORD, ["neither a PKCS#12 file"]),
    "truncated DER": (lambda c: c.bundle()[:300], P12_PASSWORD, ["is corrupt"]),
    "truncated base64": (lambda c: wrapped_base64(c.bundle()[:300]), P12_PASSWORD, ["is corrupt"]),
    "certificate only": (lambda c: c.alice.cert.public_bytes(serialization.Encoding.DER), P12_PASSWORD,
                         ["is corrupt"]),
    "expired signing certificate": (lambda c: c.bundle(identity=pki.issue_cert(c.root, "Old Sender", expired=True),
                                                       chain=False), P12_PASSWORD,
                                    ["signing certificate", "expired on", "CN=Old Sender"]),
}


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
def test_bad_bundle_is_a_clear_error_and_nothing_is_sent(server, certs, tmp_path, case, caplog):
    make, password, expected = BAD_BUNDLES[case]
    bundle = write_bytes(tmp_path / "sender.p12", make(certs))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SmimeError) as raised:
        send_direct(bundle, password=password)

    for text in expected:
        assert text in str(raised.value)
    assert server.messages == []
    assert P12_PASSWORD not in str(raised.value) and P12_PASSWORD not in caplog.text


def test_bundle_without_a_key_is_refused(certs, tmp_path):
    der = pkcs12.serialize_key_and_certificates(b"no key", None, None, [certs.sender.cert],
                                                serialization.NoEncryption())
    with pytest.raises(SmimeError, match="has no private key and certificate"):
        smime.load_signing_identity(write_bytes(tmp_path / "certs-only.p12", der), None)


def test_missing_bundle_file_names_the_path_and_nothing_is_sent(server, tmp_path):
    missing = str(tmp_path / "nowhere" / "sender.p12")
    with pytest.raises(SmimeError) as raised:
        send_direct(missing)
    assert missing in str(raised.value) and "No such file" in str(raised.value)
    assert server.messages == []


def _bad_pem_cases(certs):
    alice = certs.alice.cert_pem.decode()
    body = alice.split("-----")[2]
    return {
        "no certificate": ("alice@example.com, bob@example.com", ["holds no certificate"]),
        "garbage in the second block": (alice + "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
                                        "-----END CERTIFICATE-----\n", ["certificate 2 cannot be parsed"]),
        "not base64": ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
                       ["certificate 1 cannot be parsed"]),
        "no END line": ("-----BEGIN CERTIFICATE-----" + body,
                        ["PEM block 1", "no matching '-----END CERTIFICATE-----'"]),
        "a private key": (certs.alice.key_pem.decode(), ["PEM block 1 is a PRIVATE KEY, not a certificate"]),
        "expired recipient": (alice + certs.expired.cert_pem.decode(),
                              ["certificate 2", "CN=Expired Recipient", "expired on", "valid "]),
    }


@pytest.mark.parametrize("case", ["no certificate", "garbage in the second block", "not base64", "no END line",
                                  "a private key", "expired recipient"])
def test_bad_recipient_pem_is_a_clear_error_and_nothing_is_sent(server, certs, tmp_path, case):
    pem, expected = _bad_pem_cases(certs)[case]
    with pytest.raises(SmimeError) as raised:
        send_direct(write_bytes(tmp_path / "sender.p12", certs.bundle()), recipients=pem)
    for text in expected:
        assert text in str(raised.value)
    assert "mail_encryption_recipients" in str(raised.value)
    assert server.messages == []
    key_material = certs.alice.key_pem.decode().split("-----")[2].split()[0]
    assert key_material not in str(raised.value)        # a key pasted by mistake is never echoed


# --- warnings, cache, secrets ---------------------------------------------------------------------------------
def test_certificates_without_email_protection_only_warn(certs, tmp_path, caplog):
    server_only_bundle = write_bytes(tmp_path / "tls.p12", certs.bundle(identity=certs.server_only))
    caplog.set_level(logging.WARNING, logger="fn_outbound_email")

    identity = smime.load_signing_identity(server_only_bundle, P12_PASSWORD)
    recipients = smime.parse_recipient_certificates(certs.alice.cert_pem + certs.server_only.cert_pem)

    assert identity.cert == certs.server_only.cert and len(recipients) == 2
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all("CN=TLS Only" in text and "emailProtection" in text for text in warnings)
    assert warnings[0].startswith("The signing certificate") and warnings[1].startswith("Recipient certificate 2")
    assert P12_PASSWORD not in caplog.text


def test_certificates_with_email_protection_do_not_warn(certs, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="fn_outbound_email")
    smime.load_signing_identity(write_bytes(tmp_path / "sender.p12", certs.bundle()), P12_PASSWORD)
    smime.parse_recipient_certificates(certs.alice.cert_pem.decode())
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


def test_identity_is_cached_until_the_file_or_password_changes(certs, tmp_path):
    path = tmp_path / "sender.p12"
    write_bytes(path, certs.bundle())
    first = smime.load_signing_identity(str(path), P12_PASSWORD)
    assert smime.load_signing_identity(str(path), P12_PASSWORD) is first
    assert "p12" not in repr(first) and "key=" not in repr(first)      # the key is kept out of repr

    replacement = tmp_path / "replacement.p12"
    write_bytes(replacement, certs.bundle(identity=certs.bob, password="other-password", chain=False))
    os.replace(str(replacement), str(path))
    with pytest.raises(SmimeError, match="Wrong password"):
        smime.load_signing_identity(str(path), P12_PASSWORD)
    assert smime.load_signing_identity(str(path), "other-password").cert == certs.bob.cert


# --- send_email2 end to end ---------------------------------------------------------------------------------
@pytest.fixture(scope="class")
def smime_app_config(tmp_path_factory, certs):
    """The p12 as App Host stores it (base64) and the app.config circuits_app reads (it runs after this)."""
    global config_data
    folder = tmp_path_factory.mktemp("smime_app")
    bundle = write_bytes(folder / "sender.p12.b64", wrapped_base64(certs.bundle()))
    config_data = app_config(SMTP_PORT, smtp_ssl_mode="None", from_email_address="SOAR Notifier <soar@example.com>",
                             p12_signing_cert=bundle, p12_signing_cert_password=P12_PASSWORD)
    yield
    config_data = ""


@pytest.mark.usefixtures("smime_app_config")     # listed first, so it is set up before circuits_app
class TestSendEmail2Smime:

    def send(self, circuits_app, **inputs):
        inputs.setdefault("mail_incident_id", INCIDENT_ID)
        inputs.setdefault("mail_to", "alice@example.com")
        inputs.setdefault("mail_subject", "Incident update")
        return call_function(circuits_app, "send_email2", inputs)

    def test_signed_and_encrypted_send_reports_both(self, circuits_app, server, certs, files, tmp_path):
        result = self.send(circuits_app, mail_body=BODY, mail_attachments="*",
                           mail_encryption_recipients=certs.alice.cert_pem.decode() + certs.bob.cert_pem.decode())

        assert result["success"] is True, result["reason"]
        assert result["content"]["signed"] is True and result["content"]["encrypted"] is True
        eml = received_file(server, tmp_path)
        message = server.messages[0].message
        assert message.get_content_type() == "application/pkcs7-mime"
        assert message["Subject"] == "Incident update" and message["Message-ID"] == result["content"]["message_id"]
        decrypt(eml, files["bob_cert"], files["bob_key"], str(tmp_path / "inner.eml"))
        content = verify(str(tmp_path / "inner.eml"), files["ca"], str(tmp_path / "content.txt"))
        assert b"Incident &amp; details" in content
        sent = result["content"]["attachments"]["sent"]
        signed_names = [part.get_filename() for part in email.message_from_bytes(content, policy=email.policy.SMTP)
                        .iter_attachments()]
        assert sent and sorted(signed_names) == sorted(compose.safe_attachment_name(name) for name in sent)

    def test_signed_only_send(self, circuits_app, server, files, tmp_path):
        result = self.send(circuits_app, mail_body="Signed only")

        assert result["success"] is True, result["reason"]
        assert (result["content"]["signed"], result["content"]["encrypted"]) == (True, False)
        assert b"Signed only" in verify(received_file(server, tmp_path), files["ca"], str(tmp_path / "out.txt"))

    @pytest.mark.parametrize("case", ["no certificate", "garbage in the second block", "expired recipient"])
    def test_bad_recipient_pem_fails_the_send_with_its_reason(self, circuits_app, server, certs, case):
        pem, expected = _bad_pem_cases(certs)[case]
        result = self.send(circuits_app, mail_body="x", mail_encryption_recipients=pem)

        assert result["success"] is False
        for text in expected:
            assert text in result["reason"]
        assert result["content"]["signed"] is False and result["content"]["encrypted"] is False
        assert server.messages == []
