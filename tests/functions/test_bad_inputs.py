# -*- coding: utf-8 -*-
"""A catalogue of malformed function inputs and app.config values.

Each one must stop the send with an error that says what is wrong, and the SMTP server must see no
connection at all. Most cases call the library (build_request + Mailer, load_settings) directly for
speed; a handful go through the SOAR functions end to end.
"""

import base64
import dataclasses
import functools
import re

import pytest

from fn_outbound_email.cli.offline_soar import AttachmentFile, load_incident_data, offline_soar_client
from fn_outbound_email.components import funct_send_email, funct_send_email2
from fn_outbound_email.lib.errors import ConfigurationError, MailError, SmimeError, TemplateError
from fn_outbound_email.lib.mailer import Mailer
from fn_outbound_email.lib.settings import load_settings
from tests.support import pki
from tests.support.fault_smtp import FaultSmtpServer
from tests.support.function_runner import FunctionRaised, app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

SMTP_PORT = free_port()
SAMPLE = load_incident_data()
P12_PASSWORD = "right-password-1"
NOT_PEM = "just some text, no certificate"
BAD_BASE64_PEM = "-----BEGIN CERTIFICATE-----\nnot*base64*at*all\n-----END CERTIFICATE-----\n"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
UNTERMINATED_PEM = "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
# the finding: a subject whose encoded word decodes to new header lines and a body
ENCODED_CRLF_SUBJECT = ("[2314] =?utf-8?q?Invoice=0D=0AReply-To:_attacker@evil.example=0D=0AContent-Type:_text/html"
                        "=0D=0A=0D=0A<h1>x</h1>?=")


@pytest.fixture(scope="module")
def smtp_server():
    with FaultSmtpServer(port=SMTP_PORT) as server:     # no faults: it only counts connections
        yield server


@pytest.fixture
def server(smtp_server):
    smtp_server.script()
    yield smtp_server
    assert smtp_server.connections == 0, "a bad input reached the SMTP server"
    assert smtp_server.received == [] and smtp_server.messages == []


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory, tls_pki):
    folder = tmp_path_factory.mktemp("bad-inputs")
    ca = tls_pki.ca                      # the session's test CA issues the S/MIME certificates too
    sender = pki.issue_cert(ca, "sender", email="soar@example.com")
    p12 = folder / "sender.p12"
    p12.write_bytes(pki.p12_bytes(sender, ca, password=P12_PASSWORD.encode()))
    garbage = folder / "garbage.p12"
    garbage.write_bytes(b"\x00\x01 this is not PKCS#12 \xff" * 10)
    expired = pki.issue_cert(ca, "expired recipient", email="old@example.com", expired=True)
    return {"p12": str(p12), "garbage": str(garbage), "expired_pem": expired.cert_pem.decode()}


def base_section(port=SMTP_PORT):
    return {"smtp_server": "127.0.0.1", "smtp_port": str(port), "smtp_conn_timeout": "2", "smtp_retries": "0",
            "from_email_address": "SOAR <soar@example.com>"}


def make_mailer(section_overrides=None, drop=(), attachment_names=None):
    """The Mailer over the sample incident; ``attachment_names`` renames its attachments (one each)."""
    section = base_section()
    section.update(section_overrides or {})
    for key in drop:
        section.pop(key, None)
    opts = {"fn_outbound_email": section,
            "fn_outbound_email:templates": {"example": "data/templates/example_send_email.jinja"}}
    data = SAMPLE
    if attachment_names is not None:
        data = dataclasses.replace(SAMPLE, attachments=[AttachmentFile(id=number, name=name,
                                                                       path=SAMPLE.attachments[0].path)
                                                        for number, name in enumerate(attachment_names, start=1)])
    return Mailer(load_settings(opts), offline_soar_client(data))


def send_email2_inputs(**overrides):
    inputs = {"mail_incident_id": SAMPLE.incident_id, "mail_to": "alice@example.com", "mail_subject": "Hi",
              "mail_body": "body"}
    inputs.update(overrides)
    return inputs


# --- function inputs ------------------------------------------------------------------------------------
# (input overrides, exception type, fragment of the message)
SEND_EMAIL2_CASES = {
    "subject CRLF": ({"mail_subject": "Hi\r\nBcc: victim@example.net"}, ValueError,
                     "mail_subject contains a line break or control character"),
    "subject NUL": ({"mail_subject": "Hi\x00there"}, ValueError, "mail_subject contains a line break"),
    "subject bare CR": ({"mail_subject": "Hi\rX-Spam: no"}, ValueError, "mail_subject contains a line break"),
    "from LF": ({"mail_from": "soar@example.com\nBcc: victim@example.net"}, ValueError,
                "mail_from contains a line break"),
    "from display name CRLF": ({"mail_from": "Eve\r\n <eve@example.com>"}, ValueError, "mail_from contains"),
    "to CRLF": ({"mail_to": "alice@example.com\r\nBcc: victim@example.net"}, ValueError,
                "mail_to contains a line break"),
    "cc LF": ({"mail_cc": "carol@example.com\nX-Injected: 1"}, ValueError, "mail_cc contains a line break"),
    "bcc CR": ({"mail_bcc": "dave@example.com\rX: y"}, ValueError, "mail_bcc contains a line break"),
    "message id CRLF": ({"mail_message_id": "abc@soar.example\r\nX: y"}, ValueError,
                        "mail_message_id contains a line break"),
    "in-reply-to LF": ({"mail_in_reply_to": "<orig@mail.example>\nX: y"}, ValueError,
                       "mail_in_reply_to contains a line break"),
    "to not an address": ({"mail_to": "not-an-address"}, ValueError,
                          "mail_to: 'not-an-address' is not a valid email address"),
    "to double at": ({"mail_to": "alice@@example.com"}, ValueError, "mail_to: 'alice@@example.com' is not a valid"),
    "to domain without dot": ({"mail_to": "alice@localhost"}, ValueError, "'alice@localhost' has an invalid domain"),
    "to domain label too long": ({"mail_to": "a@{0}.com".format("x" * 64)}, ValueError, "has an invalid domain"),
    "to local part starts with dot": ({"mail_to": ".alice@example.com"}, ValueError, "is not a valid email address"),
    "to trailing junk": ({"mail_to": "Jane <jane@example.com> extra"}, ValueError, "is not a valid email address"),
    "to unterminated angle": ({"mail_to": "Jane <jane@example.com"}, ValueError, "is not a valid email address"),
    "to empty": ({"mail_to": ""}, ValueError, "mail_to is required"),
    "to separators only": ({"mail_to": " ; , ;"}, ValueError, "mail_to is required"),
    "cc half address": ({"mail_cc": "bob@"}, ValueError, "mail_cc: 'bob@' is not a valid email address"),
    "bcc space in local part": ({"mail_bcc": "bad address@example.com"}, ValueError, "mail_bcc"),
    "from not an address": ({"mail_from": "nobody"}, ValueError, "mail_from: 'nobody' is not a valid"),
    "incident id not numeric": ({"mail_incident_id": "INC-12"}, ValueError,
                                "mail_incident_id must be a number, not 'INC-12'"),
    "incident id decimal": ({"mail_incident_id": "12.5"}, ValueError, "mail_incident_id must be a number"),
    "incident id missing": ({"mail_incident_id": None}, ValueError, "mail_incident_id is required"),
    "importance unknown": ({"mail_importance": "urgent"}, ValueError,
                           "mail_importance must be one of low, normal, high, not 'urgent'"),
    "message id without at": ({"mail_message_id": "no-at-sign"}, ValueError,
                              "mail_message_id: 'no-at-sign' is not a message id"),
    "in-reply-to with space": ({"mail_in_reply_to": "<a b@c.example>"}, ValueError,
                               "mail_in_reply_to: '<a b@c.example>' is not a message id"),
    "template label and inline both": ({"mail_template_label": "example", "mail_inline_template": "x"}, ValueError,
                                       "either mail_inline_template or mail_template_label, not both"),
    "unknown template label": ({"mail_template_label": "no_such_label"}, TemplateError,
                               "Template label 'no_such_label' is not defined in [fn_outbound_email:templates]"),
    "template syntax error": ({"mail_inline_template": "Hello\n{{ incident.name "}, TemplateError,
                              "has a syntax error on line 2"),
    "template unclosed block": ({"mail_inline_template": "{% for a in artifact %}{{ a.value }}"}, TemplateError,
                                "syntax error on line 1"),
    "template reaching internals": ({"mail_inline_template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
                                    TemplateError, "the sandbox does not allow"),
    "no body and no template": ({"mail_body": None}, MailError, "No email body or template specified"),
    "encryption recipients not PEM": ({"mail_encryption_recipients": NOT_PEM}, SmimeError,
                                      "mail_encryption_recipients holds no certificate"),
    "encryption recipients bad base64": ({"mail_encryption_recipients": BAD_BASE64_PEM}, SmimeError,
                                         "certificate 1 cannot be parsed"),
    "encryption recipients private key": ({"mail_encryption_recipients": KEY_PEM}, SmimeError,
                                          "PEM block 1 is a PRIVATE KEY, not a certificate"),
    "encryption recipients unterminated": ({"mail_encryption_recipients": UNTERMINATED_PEM}, SmimeError,
                                           "has no matching '-----END CERTIFICATE-----' line"),
    # RFC 2047 encoded words that decode to CR/LF or other control characters (the email package would write
    # them raw: new header lines, a body of the attacker's)
    "subject encoded CRLF": ({"mail_subject": ENCODED_CRLF_SUBJECT}, ValueError,
                             "mail_subject holds an RFC 2047 encoded word that decodes to a line break"),
    "subject b-encoded LF": ({"mail_subject": "=?utf-8?b?SGkKQmNjOiB2aWN0aW1AZXhhbXBsZS5uZXQ=?="}, ValueError,
                             "mail_subject holds an RFC 2047 encoded word that decodes to a line break"),
    "subject encoded NUL": ({"mail_subject": "a =?utf-8?q?=00?= b"}, ValueError,
                            "mail_subject holds an RFC 2047 encoded word"),
    "subject unknown charset": ({"mail_subject": "=?x-unknown?q?Gr=FC=DFe?="}, ValueError,
                                "mail_subject holds an RFC 2047 encoded word in an unknown charset"),
    "subject bytes not in charset": ({"mail_subject": "=?us-ascii?q?Gr=FC=DFe?="}, ValueError,
                                     "or with bytes that are not text in its charset"),
    "subject lone surrogate": ({"mail_subject": "Hi \ud800"}, ValueError, "mail_subject contains a lone surrogate"),
    "subject C1 control": ({"mail_subject": "Hi\x85there"}, ValueError, "mail_subject contains a line break"),
    "subject line separator": ({"mail_subject": "Hi\u2028there"}, ValueError, "mail_subject contains a line break"),
    "to display name encoded CRLF": ({"mail_to": "=?utf-8?q?Alice=0D=0ABcc:_v@example.net?= <alice@example.com>"},
                                     ValueError, "mail_to holds an RFC 2047 encoded word that decodes to a line"),
    "cc display name encoded LF": ({"mail_cc": "=?utf-8?q?Carol=0AX:_1?= <carol@example.com>"}, ValueError,
                                   "mail_cc holds an RFC 2047 encoded word"),
    "from display name encoded CRLF": ({"mail_from": "=?utf-8?q?SOAR=0D=0AReply-To:_a@evil.example?= <s@example.com>"},
                                       ValueError, "mail_from holds an RFC 2047 encoded word"),
    "in-reply-to encoded CRLF": ({"mail_in_reply_to": "=?utf-8?q?x=0D=0ABcc:_y?=@evil.example"}, ValueError,
                                 "mail_in_reply_to holds an RFC 2047 encoded word that decodes to a line break"),
    "message id encoded word": ({"mail_message_id": "<=?utf-8?q?abc?=@soar.example>"}, ValueError,
                                "mail_message_id: '<=?utf-8?q?abc?=@soar.example>' holds an RFC 2047 encoded word"),
    "message id 2000 characters": ({"mail_message_id": "{0}@soar.example".format("a" * 2000)}, ValueError,
                                   "mail_message_id is 2015 characters long; a message id may have at most 985"),
    "in-reply-to 987 characters": ({"mail_in_reply_to": "<{0}@mail.example>".format("b" * 972)}, ValueError,
                                   "mail_in_reply_to is 987 characters long"),
    "message id non-ASCII": ({"mail_message_id": "grüße@soar.example"}, ValueError,
                             "mail_message_id: 'grüße@soar.example' is not a message id of the form id@host"),
    "message id half bracket": ({"mail_message_id": "<abc@soar.example"}, ValueError,
                                "mail_message_id: '<abc@soar.example' is not a message id"),
    "message id quoted local part": ({"mail_message_id": '<"a b"@soar.example>'}, ValueError,
                                     "is not a message id of the form id@host"),
    "message id double dot": ({"mail_message_id": "<a..b@soar.example>"}, ValueError, "is not a message id"),
    "in-reply-to two ids": ({"mail_in_reply_to": "<a@x.example><b@y.example>"}, ValueError,
                            "mail_in_reply_to: '<a@x.example><b@y.example>' is not a message id"),
    # trailing junk after an address: the email package's parser reports it; it is refused, not dropped
    "to second angle address": ({"mail_to": "Alice <alice@example.org> <bob@evil.org>"}, ValueError,
                                "mail_to: 'Alice <alice@example.org> <bob@evil.org>' is not a valid email address"),
    "to paren then address": ({"mail_to": "alice@example.org)<bob@example.org>"}, ValueError,
                              "mail_to: 'alice@example.org)<bob@example.org>' is not a valid email address"),
    "cc text after angle address": ({"mail_cc": "Carol <carol@example.org> bob@evil.org"}, ValueError,
                                    "mail_cc: 'Carol <carol@example.org> bob@evil.org' is not a valid"),
    "from second address": ({"mail_from": "soar@example.com <eve@evil.org>"}, ValueError,
                            "mail_from: 'soar@example.com <eve@evil.org>' is not a valid email address"),
    "to group": ({"mail_to": "team: alice@example.org;"}, ValueError, "is not a valid email address"),
    "to encoded word local part": ({"mail_to": "=?utf-8?q?bob?=@example.org"}, ValueError,
                                   "mail_to: '=?utf-8?q?bob?=@example.org' is not a valid email address"),
    # IDNA 2008 / UTS 46: a mapping that changes the domain would send elsewhere than the input shows
    "to zero-width in domain": ({"mail_to": "alice@exa\u200bmple.org"}, ValueError,
                                "has a domain that IDNA 2008 (UTS 46) maps to 'example.org'"),
    "to full-width domain": ({"mail_to": "alice@\uff45xample.org"}, ValueError,
                             "has a domain that IDNA 2008 (UTS 46) maps to 'example.org'"),
    "to soft hyphen in domain": ({"mail_to": "alice@b\u00fccher\u00ad.example"}, ValueError,
                                 "maps to 'b\u00fccher.example'"),
    "to disallowed code point": ({"mail_to": "alice@\u2603\u00fc.example"}, ValueError, "has an invalid domain"),
    "to bad A-label": ({"mail_to": "alice@xn--abc-.example"}, ValueError,
                       "mail_to: 'alice@xn--abc-.example' has an invalid domain"),
    "to domain too long": ({"mail_to": "a@" + ".".join(["x" * 60] * 5)}, ValueError, "has an invalid domain"),
    # UTF-8 local parts are allowed (SMTPUTF8), but only visible characters
    "to zero-width local part": ({"mail_to": "j\u00f6\u200brg@example.org"}, ValueError, "is not a valid email"),
    "to bidi override local part": ({"mail_to": "\u202egro@example.org"}, ValueError, "is not a valid email address"),
    "to no-break space local part": ({"mail_to": "j\u00f6\u00a0rg@example.org"}, ValueError, "is not a valid"),
    # CPython gh-80222 (3.11.7 has it): folding drops a long display name's quotes, which adds an address
    "to long display name with an address": ({"mail_to": '"{0} <x@evil.example>, b" <alice@example.com>'.format(
        "a" * 90)}, ValueError, "The To header (mail_to) would not read back as the addresses given"),
}


@pytest.mark.parametrize("overrides, error_type, fragment", list(SEND_EMAIL2_CASES.values()),
                         ids=list(SEND_EMAIL2_CASES))
def test_send_email2_input_is_refused_with_a_clear_error(server, overrides, error_type, fragment):
    mailer = make_mailer()
    with pytest.raises(error_type, match=re.escape(fragment)):
        mailer.send(funct_send_email2.build_request(send_email2_inputs(**overrides)))


def test_expired_encryption_certificate_is_refused(server, pki_files):
    mailer = make_mailer()
    with pytest.raises(SmimeError, match=r"mail_encryption_recipients: certificate 1 \(.*expired recipient.*\) "
                                         r"expired on"):
        mailer.send(funct_send_email2.build_request(send_email2_inputs(
            mail_encryption_recipients=pki_files["expired_pem"])))


SEND_EMAIL_CASES = {
    "legacy to CRLF": ({"mail_to": "alice@example.com\r\nBcc: victim@example.net"}, ValueError,
                       "mail_to contains a line break"),
    "legacy subject LF": ({"mail_subject": "Legacy\nBcc: victim@example.net"}, ValueError,
                          "mail_subject contains a line break"),
    "legacy html template syntax error": ({"mail_body_html": "<p>{{ incident.id }</p>"}, TemplateError,
                                          "has a syntax error on line 1"),
    "legacy bad cc": ({"mail_cc": "carol at example.com"}, ValueError, "mail_cc"),
}


@pytest.mark.parametrize("overrides, error_type, fragment", list(SEND_EMAIL_CASES.values()),
                         ids=list(SEND_EMAIL_CASES))
def test_send_email_input_is_refused_with_a_clear_error(server, overrides, error_type, fragment):
    mailer = make_mailer()
    inputs = {"mail_incident_id": SAMPLE.incident_id, "mail_to": "alice@example.com", "mail_subject": "Legacy",
              "mail_body_text": "text"}
    inputs.update(overrides)
    with pytest.raises(error_type, match=re.escape(fragment)):
        mailer.send(funct_send_email.build_request(inputs, mailer))


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/hostname", "..\\..\\windows\\win.ini",
                                  "attachments/original-mail-headers.txt"])
def test_an_attachment_name_that_looks_like_a_path_is_never_read_as_a_file(smtp_server, name):
    """Not an error (SPEC: unknown names are reported missing) but never a file read: the mail goes without it."""
    smtp_server.script()
    outcome = make_mailer().send(funct_send_email2.build_request(send_email2_inputs(mail_attachments=name)))
    assert outcome.attachments_sent == [] and outcome.attachments_missing == [name]
    assert len(smtp_server.messages) == 1
    assert list(smtp_server.messages[0].message.iter_attachments()) == []


def _encoded_word(text):
    return "=?utf-8?b?{0}?=".format(base64.b64encode(text.encode("utf-8")).decode("ascii"))


NESTED_NAME = functools.reduce(lambda name, _: _encoded_word(name), range(5), "../x.exe")


@pytest.mark.parametrize("name, fragment", [
    ("report.pdf\x00.exe", "Attachment 'report.pdf\\x00.exe' has a NUL character in its name"),
    ("report\ud800.pdf", "Attachment 'report\\ud800.pdf' has a lone surrogate (U+D800..U+DFFF) in its name"),
    ("=?utf-8?q?invoice=0D=0AContent-Type:_text=2Fhtml?=.pdf",
     "The name of attachment '=?utf-8?q?invoice=0D=0AContent-Type:_text=2Fhtml?=.pdf' holds an RFC 2047 encoded "
     "word that decodes to a line break"),
    ("=?x-unknown?q?Rechnung_M=E4rz?=.pdf", "holds an RFC 2047 encoded word in an unknown charset"),
    ("=?utf-8?q?report=00.exe?=.pdf", "holds an RFC 2047 encoded word that decodes to a"),
    # encoded five times over: what is left after cleaning still decodes (to ../x.exe) in a reader
    (NESTED_NAME, "would reach its recipients named '../x.exe'"),
])
def test_bad_attachment_name_is_refused_naming_it(server, name, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make_mailer(attachment_names=[name]).send(funct_send_email2.build_request(send_email2_inputs(
            mail_attachments="*")))


@pytest.mark.parametrize("name, shown", [
    ("invoice\u202efdp.exe", "invoicefdp.exe"),          # U+202E would show it as "invoiceexe.pdf"
    ("\u200bpayroll\u2066.xlsx\u2069", "payroll.xlsx"), ("\ufeffnotes.txt", "notes.txt"),
    ("line\u2028break.txt", "linebreak.txt"),
    # readers decode RFC 2047 words in a file name: the decoded name is the one cleaned
    ("=?utf-8?q?invoice=E2=80=AEfdp.exe?=", "invoicefdp.exe"),
    ("=?utf-8?q?=2E=2E=2F=2E=2E=2Fetc=2Fcron.d=2Fx?=", "x"),
    ("=?utf-8?b?Li4vLi4vZXRjL2Nyb24uZC94?=", "x"),
    ("=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=", "résumé.pdf"),
])
def test_attachment_names_lose_bidi_and_format_characters(smtp_server, name, shown):
    """Not an error: the attachment is sent under the name a recipient can read as it is."""
    smtp_server.script()
    outcome = make_mailer(attachment_names=[name]).send(funct_send_email2.build_request(send_email2_inputs(
        mail_attachments="*")))
    assert outcome.attachments_sent == [name]
    (part,) = smtp_server.messages[0].message.iter_attachments()
    assert part.get_filename() == shown


# --- app.config ---------------------------------------------------------------------------------------------
# (section overrides, keys removed, exception type, fragment)
CONFIG_CASES = {
    "port not a number": ({"smtp_port": "twenty-five"}, (), ConfigurationError,
                          "smtp_port = 'twenty-five' is not a number"),
    "port decimal": ({"smtp_port": "25.5"}, (), ConfigurationError, "smtp_port = '25.5' is not a number"),
    "port zero": ({"smtp_port": "0"}, (), ConfigurationError, "smtp_port must be at least 1, not 0"),
    "port negative": ({"smtp_port": "-587"}, (), ConfigurationError, "smtp_port must be at least 1"),
    "port too large": ({"smtp_port": "70000"}, (), ConfigurationError, "smtp_port must be at most 65535, not 70000"),
    "unknown ssl mode": ({"smtp_ssl_mode": "tls1.3"}, (), ConfigurationError,
                         "smtp_ssl_mode = 'tls1.3' is not one of None, starttls, ssl"),
    "negative timeout": ({"smtp_conn_timeout": "-5"}, (), ConfigurationError,
                         "smtp_conn_timeout must be at least 1, not -5"),
    "zero timeout": ({"smtp_conn_timeout": "0"}, (), ConfigurationError, "smtp_conn_timeout must be at least 1"),
    "timeout not a number": ({"smtp_conn_timeout": "soon"}, (), ConfigurationError,
                             "smtp_conn_timeout = 'soon' is not a number"),
    "timeout nan": ({"smtp_conn_timeout": "nan"}, (), ConfigurationError, "smtp_conn_timeout = 'nan' is not a number"),
    "timeout infinite": ({"smtp_conn_timeout": "inf"}, (), ConfigurationError, "is not a number"),
    "smtp_server missing": ({}, ("smtp_server",), ConfigurationError, "smtp_server is required"),
    "smtp_server blank": ({"smtp_server": "   "}, (), ConfigurationError, "smtp_server is required"),
    "CA file missing": ({"smtp_ssl_cafile": "/nonexistent/ca-bundle.pem"}, (), ConfigurationError,
                        "smtp_ssl_cafile = '/nonexistent/ca-bundle.pem' is not a file"),
    "user without password": ({"smtp_user": "mailer@example.com"}, (), ConfigurationError,
                              "smtp_user is set but neither smtp_password nor OAuth2"),
    "client_id without token_url": ({"client_id": "app-id", "refresh_token": "rt"}, (), ConfigurationError,
                                    "client_id is set, so OAuth2 also needs: token_url"),
    "client_id without anything": ({"client_id": "app-id"}, (), ConfigurationError,
                                   "OAuth2 also needs: token_url, refresh_token"),
    "max size not a number": ({"max_message_size": "25MB"}, (), ConfigurationError,
                              "max_message_size = '25MB' is not a number"),
    "max size zero": ({"max_message_size": "0"}, (), ConfigurationError, "max_message_size must be at least 1"),
    "retries negative": ({"smtp_retries": "-1"}, (), ConfigurationError, "smtp_retries must be at least 0, not -1"),
    "retries not a number": ({"smtp_retries": "two"}, (), ConfigurationError, "smtp_retries = 'two' is not a number"),
    "p12 file missing": ({"p12_signing_encrypting_cert": "/nonexistent/sender.p12"}, (), SmimeError,
                         "p12_signing_encrypting_cert = '/nonexistent/sender.p12' cannot be read: No such file"),
}


@pytest.mark.parametrize("overrides, removed, error_type, fragment", list(CONFIG_CASES.values()),
                         ids=list(CONFIG_CASES))
def test_bad_app_config_is_refused_naming_the_key(server, overrides, removed, error_type, fragment):
    with pytest.raises(error_type, match=re.escape(fragment)):
        make_mailer(overrides, drop=removed).send(funct_send_email2.build_request(send_email2_inputs()))


@pytest.mark.parametrize("bundle, password, fragment", [
    ("p12", "wrong-password", "Wrong password for the S/MIME bundle"),
    ("p12", None, "is password-protected: set p12_signing_encrypting_cert_password"),
    ("garbage", None, "is neither a PKCS#12 file (DER) nor base64 of one"),
])
def test_bad_signing_bundle_is_refused(server, pki_files, bundle, password, fragment):
    overrides = {"p12_signing_encrypting_cert": pki_files[bundle]}
    if password:
        overrides["p12_signing_encrypting_cert_password"] = password
    with pytest.raises(SmimeError, match=re.escape(fragment)) as raised:
        make_mailer(overrides).send(funct_send_email2.build_request(send_email2_inputs()))
    assert P12_PASSWORD not in str(raised.value) and "wrong-password" not in str(raised.value)


def test_missing_default_template_file_for_send_email(server):
    mailer = make_mailer({"template_file": "/nonexistent/template.jinja"})
    inputs = {"mail_incident_id": SAMPLE.incident_id, "mail_to": "alice@example.com", "mail_subject": "Legacy"}
    with pytest.raises(TemplateError, match=re.escape("Template file '/nonexistent/template.jinja' cannot be read")):
        mailer.send(funct_send_email.build_request(inputs, mailer))


# --- a handful end to end through the SOAR functions --------------------------------------------------------

config_data = app_config(SMTP_PORT, smtp_conn_timeout=2, from_email_address="soar@example.com")

resilient_mock = SoarMock


class TestThroughTheFunctions:

    @pytest.mark.parametrize("function, inputs, fragment", [
        ("send_email2", {"mail_to": "alice@example.com", "mail_subject": "a\r\nBcc: victim@example.net",
                         "mail_body": "x"}, "mail_subject contains a line break"),
        ("send_email2", {"mail_to": "alice@example.com", "mail_body": "x", "mail_importance": "urgent"},
         "mail_importance must be one of"),
        ("send_email2", {"mail_to": "alice@example.com", "mail_body": "x", "mail_incident_id": "abc"},
         "mail_incident_id must be a number"),
        ("send_email", {"mail_to": "alice@example.com\nBcc: victim@example.net", "mail_subject": "s",
                        "mail_body_text": "x"}, "mail_to contains a line break"),
        ("send_email2", {"mail_to": "alice@example.com", "mail_subject": ENCODED_CRLF_SUBJECT, "mail_body": "x"},
         "mail_subject holds an RFC 2047 encoded word that decodes to a line break"),
        ("send_email2", {"mail_to": "alice@example.com", "mail_body": "x",
                         "mail_in_reply_to": "=?utf-8?q?x=0D=0ABcc:_y?=@evil.example"},
         "mail_in_reply_to holds an RFC 2047 encoded word"),
        ("send_email", {"mail_to": "=?utf-8?q?A=0D=0ABcc:_v@example.net?= <alice@example.com>", "mail_subject": "s",
                        "mail_body_text": "x"}, "mail_to holds an RFC 2047 encoded word"),
        ("send_email2", {"mail_to": "Alice <alice@example.org> <bob@evil.org>", "mail_body": "x"},
         "mail_to: 'Alice <alice@example.org> <bob@evil.org>' is not a valid email address"),
    ])
    def test_input_error_raises_from_the_function(self, circuits_app, server, function, inputs, fragment):
        inputs.setdefault("mail_incident_id", INCIDENT_ID)
        with pytest.raises(FunctionRaised) as raised:
            call_function(circuits_app, function, inputs)
        assert isinstance(raised.value.original, ValueError)
        assert fragment in str(raised.value)

    @pytest.mark.parametrize("inputs, fragment", [
        ({"mail_template_label": "no_such_label"}, "Template label 'no_such_label' is not defined"),
        ({"mail_encryption_recipients": NOT_PEM}, "mail_encryption_recipients holds no certificate"),
    ])
    def test_failure_result_names_the_cause(self, circuits_app, server, inputs, fragment):
        inputs.update(mail_incident_id=INCIDENT_ID, mail_to="alice@example.com")
        result = call_function(circuits_app, "send_email2", inputs)
        assert result["success"] is False
        assert fragment in result["reason"]
