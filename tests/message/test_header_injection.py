# -*- coding: utf-8 -*-
"""Header injection through RFC 2047 encoded words, and the check every folded header line passes.

The email package decodes an encoded word (``=?utf-8?q?=0D=0A?=``) before it folds a header and then writes
the decoded CR/LF as they are: a subject, a display name, a message id or an attachment name could add
header lines of the attacker's (Reply-To, Bcc, a Content-Type and a body of their own). Each input is sent
through the Mailer to a real aiosmtpd server; what the server receives is read from its raw bytes.
"""

import base64
import dataclasses
import email
import email.policy
import random
import re

from email.headerregistry import Address
from email.message import MIMEPart

import pytest
from aiosmtpd.controller import Controller

from fn_outbound_email.cli.offline_soar import AttachmentFile, load_incident_data, offline_soar_client
from fn_outbound_email.lib.message import compose, header_policy
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from tests.support.smtp_server import RecordingHandler, SmtpTestServer, free_port, serve_on_bound_socket

SAMPLE = load_incident_data()
SAMPLE_FILE = SAMPLE.attachments[0].path
with open(SAMPLE_FILE, "rb") as _handle:
    SAMPLE_BYTES = _handle.read()
FIELD_NAME = re.compile(rb"([!-9;-~]+):")
CONTENT_HEADERS = ("Content-Type", "Content-Transfer-Encoding")

FINDING_SUBJECT = ("[2314] =?utf-8?q?Invoice=0D=0AReply-To:_attacker@evil.example=0D=0AContent-Type:_text/html"
                   "=0D=0A=0D=0A<h1>Pay_here</h1>?=")


@pytest.fixture(scope="module")
def smtp_server():
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def server(smtp_server):
    smtp_server.messages.clear()
    return smtp_server


def mailer_for(server, attachment_names=()):
    """The Mailer with app.config pointing at ``server``; the incident's attachments carry the given names."""
    settings = load_settings({"fn_outbound_email": {
        "smtp_server": "127.0.0.1", "smtp_port": str(server.port), "smtp_conn_timeout": "5", "smtp_retries": "0",
        "from_email_address": "SOAR <soar@example.com>"}})
    data = dataclasses.replace(SAMPLE, attachments=[AttachmentFile(id=number, name=name, path=SAMPLE_FILE)
                                                    for number, name in enumerate(attachment_names, start=1)])
    return Mailer(settings, offline_soar_client(data))


def request(**fields):
    values = {"incident_id": SAMPLE.incident_id, "to": "alice@example.com", "subject": "Hi", "body": "our body"}
    values.update(fields)
    return MailRequest(**values)


def header_names(data):
    """The field names of the header block, read from the raw bytes: every line starts a field or continues one."""
    head = data.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and names:
            continue
        match = FIELD_NAME.match(line)
        assert match, "a header line that is neither a field nor a continuation: {0!r}".format(line)
        names.append(match.group(1).decode("ascii"))
    return names


def read_filename(name):
    """``name`` as a reader's get_filename() shows it: the email package decodes encoded words in it too."""
    part = MIMEPart(policy=email.policy.SMTP)
    part.set_content(b"", maintype="application", subtype="octet-stream", filename=name)
    return email.message_from_bytes(part.as_bytes(), policy=email.policy.default).get_filename()


def part_header_names(data, boundary):
    """The header field names of each part of a multipart message, read from its raw bytes."""
    pieces = data.split(b"\r\n--" + boundary.encode("ascii"))
    return [header_names(piece[2:]) for piece in pieces[1:-1]]


# --- the finding: each way in is refused, naming the input, and nothing reaches the server ------------------

ENCODED_CRLF_CASES = {
    "subject": ({"subject": FINDING_SUBJECT}, "mail_subject"),
    "subject, word inside a word": ({"subject": "x=?utf-8?q?=0D=0ABcc:_victim@example.net?=y"}, "mail_subject"),
    "subject, b encoding": ({"subject": "=?utf-8?b?{0}?=".format(
        base64.b64encode(b"Hi\r\nBcc: victim@example.net").decode())}, "mail_subject"),
    "subject, encoded NUL": ({"subject": "=?utf-8?q?a=00b?="}, "mail_subject"),
    "subject, encoded twice": ({"subject": "=?utf-8?q?=3D=3Futf-8=3Fq=3F=3D0D=3D0ABcc:_x=3F=3D?="}, "mail_subject"),
    "to display name": ({"to": "=?utf-8?q?Alice=0D=0ABcc:_victim@example.net?= <alice@example.com>"}, "mail_to"),
    "to quoted display name": ({"to": '"=?utf-8?q?Alice=0D=0AReply-To:_x@evil.example?=" <alice@example.com>'},
                               "mail_to"),
    "cc display name": ({"cc": "Carol <carol@example.com>, =?utf-8?b?{0}?= <dave@example.com>".format(
        base64.b64encode(b"Dave\r\nX-Injected: 1").decode())}, "mail_cc"),
    "from display name": ({"sender": "=?utf-8?q?SOAR=0AReply-To:_attacker@evil.example?= <soar@example.com>"},
                          "mail_from"),
    "bcc display name": ({"bcc": "=?utf-8?q?B=0D=0AX:_y?= <bcc@example.com>"}, "mail_bcc"),
    "in-reply-to": ({"in_reply_to": "=?utf-8?q?x=0D=0ABcc:_y?=@evil.example"}, "mail_in_reply_to"),
    "in-reply-to in brackets": ({"in_reply_to": "<=?utf-8?q?x=0D=0ABcc:_y?=@evil.example>"}, "mail_in_reply_to"),
    "message id": ({"message_id": "<=?utf-8?q?a=0D=0AX:_y?=@soar.example>"}, "mail_message_id"),
}


@pytest.mark.parametrize("fields, input_name", list(ENCODED_CRLF_CASES.values()), ids=list(ENCODED_CRLF_CASES))
def test_a_line_break_hidden_in_an_encoded_word_is_refused(server, fields, input_name):
    with pytest.raises(ValueError, match=re.escape(input_name)) as raised:
        mailer_for(server).send(request(**fields))
    assert "encoded word" in str(raised.value)
    assert server.messages == []


def test_an_encoded_line_break_in_an_attachment_name_is_refused(server):
    name = "=?utf-8?q?invoice=0D=0AContent-Type:_text=2Fhtml?=.pdf"
    with pytest.raises(ValueError, match=r"attachment .*invoice.*encoded word"):
        mailer_for(server, [name]).send(request(attachments="*"))
    assert server.messages == []


def test_the_finding_is_refused_through_the_send_pipeline_and_a_safe_encoded_subject_is_not(server):
    with pytest.raises(ValueError):
        mailer_for(server).send(request(subject=FINDING_SUBJECT))
    outcome = mailer_for(server).send(request(subject="[2314] =?utf-8?q?Rechnung_f=C3=BCr_M=C3=A4rz?="))
    received = server.messages[0]
    assert header_names(received.data) == ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
                                           "Content-Type", "Content-Transfer-Encoding"]
    assert received.message["Subject"] == "[2314] Rechnung für März"
    assert received.message["Message-ID"] == outcome.message_id


# --- the check after folding --------------------------------------------------------------------------------

@pytest.mark.parametrize("line, problem", [
    (b"Subject: a\r\nBcc: victim@example.net\r\n", "not followed by a space or tab"),
    (b"Subject: a\nBcc: x\r\n", "CR or LF that is not part of a CRLF"),
    (b"Subject: a\r \r\n", "CR or LF that is not part of a CRLF"),
    (b"Subject: a\n b\r\n", "CR or LF that is not part of a CRLF"),
    (b"Subject: a\r\n\r\n", "more than one CRLF"),
    (b"Subject: a", "does not end with CRLF"),
    (b"Subject: a\r\n\r\n<h1>body</h1>\r\n", "not followed by a space or tab"),
    (b"Subject: " + b"x" * 990 + b"\r\n", "longer than 998 octets"),
])
def test_a_folded_line_that_is_not_one_header_field_is_refused(line, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        header_policy.verified_header_line(line, "The Subject header (mail_subject)")
    assert str(raised.value).startswith("The Subject header (mail_subject) would not be one header line")


@pytest.mark.parametrize("line", [b"Subject: a\r\n", b"Subject: a\r\n b\r\n", b"Subject:\r\n\tb c\r\n",
                                  b"S: a\r\n \r\n",       # a line of only white space is folding white space
                                  b"X: " + b"y" * 995 + b"\r\n"])
def test_a_proper_header_field_passes_unchanged(line):
    assert header_policy.verified_header_line(line, "X") is line


def refused_or_one_harmless_line(name, value, source):
    """header_line(name, value) either refuses the value naming ``source``, or writes one header field with no
    line of its own for an injected field. Which depends on the email package: CPython 3.11.2 (Debian 12's) leaves
    such an encoded word encoded (or, for an address, cannot read it back and is refused for that), later patch
    releases decode it to CR/LF, which the check refuses."""
    try:
        line = header_policy.header_line(name, value)
    except ValueError as err:
        assert str(err).startswith((source + " would not be one header line",
                                    source + " would not read back as the addresses given")), err
        return "refused"
    assert re.fullmatch(rb"[^\r\n]+\r\n(?:[ \t][^\r\n]*\r\n)*", line), line
    assert not re.search(rb"\r\n(?:Bcc|bcc)", line), line
    return "one line"


def test_the_check_catches_what_the_input_checks_would_miss():
    """header_line, called without the input checks, never writes what the email package decodes to CR/LF."""
    refused_or_one_harmless_line("Subject", "=?utf-8?q?a=0D=0ABcc:_x?=", "The Subject header (mail_subject)")
    eve = Address(display_name="=?utf-8?q?Eve=0D=0ABcc:_x@y.example?=", username="eve", domain="example.com")
    refused_or_one_harmless_line("From", [eve], "The From header (mail_from)")


def test_the_check_refuses_a_folded_line_whatever_the_python_patch_level():
    """The outcome that does not depend on the email package: a line the package would write with a bare CR/LF
    is refused by the check itself (what 3.11.7 and later produce for the encoded words above)."""
    with pytest.raises(ValueError, match=r"The Subject header \(mail_subject\) would not be one header line"):
        header_policy.verified_header_line(b"Subject: a\r\nBcc: x\r\n", "The Subject header (mail_subject)")


def test_the_check_covers_attachment_part_headers(monkeypatch):
    monkeypatch.setattr(compose, "safe_attachment_name", lambda name: name)      # past the name checks
    monkeypatch.setattr(compose, "_check_read_back", lambda part, filename, name: None)
    attachment = compose.Attachment("=?utf-8?q?a=0D=0AX-Injected:_1?=.pdf", b"%PDF")
    with pytest.raises(ValueError, match=r"The Content-Disposition header of attachment .* would not be one header"):
        compose.build_content("body", [attachment])


def test_every_header_line_the_email_package_writes_goes_through_the_check(monkeypatch):
    checked = []
    monkeypatch.setattr(header_policy, "verified_header_line", lambda line, source: checked.append(line) or line)
    assert header_policy.header_line("Subject", "plain") == b"Subject: plain\r\n"
    assert header_policy.header_line("Subject", "Grüße") == b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    assert checked == [b"Subject: plain\r\n", b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"]
    del checked[:]
    headers = compose.OuterHeaders(sender=Address("SOAR", "soar", "example.com"),
                                   to=[Address("Jürgen", "j", "example.com")], subject="S", message_id="<1@x.example>",
                                   in_reply_to="<0@x.example>", importance="high")
    content = compose.build_content("<p>body</p>", [compose.Attachment("März.pdf", b"%PDF")])
    message = compose.assemble(headers, content)
    # every header line of the message, outer or part header, folded lines joined back
    written = re.findall(rb"^[!-9;-~]+:.*\r\n(?:[ \t].*\r\n)*", message, re.MULTILINE)
    assert len(written) == 19 and sorted(written) == sorted(checked)


# --- message ids: what goes on the wire is what the result reports -------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("abc.123@soar.example", "<abc.123@soar.example>"),
    ("<a!#$%&'*+/=?^_`{|}~-z@mail.example>", "<a!#$%&'*+/=?^_`{|}~-z@mail.example>"),
    ("<id@[192.0.2.1]>", "<id@[192.0.2.1]>"),
    ("<{0}@example.com>".format("a" * (compose.MAX_MESSAGE_ID - 14)), None),      # the longest allowed
])
def test_a_message_id_goes_out_exactly_as_reported(server, given, expected):
    outcome = mailer_for(server).send(request(message_id=given, in_reply_to=given))
    received = server.messages[0]
    assert outcome.message_id == (expected or given)
    assert received.message["Message-ID"] == outcome.message_id
    assert received.message["In-Reply-To"] == outcome.message_id == received.message["References"]
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert ("In-Reply-To: " + outcome.message_id + "\r\n").encode() in head
    assert max(len(line) for line in head.split(b"\r\n")) <= 998


def test_generated_message_id_is_the_one_received(server):
    outcome = mailer_for(server).send(request())
    assert server.messages[0].message["Message-ID"] == outcome.message_id
    assert re.match(r"<[^<>@\s]+@example\.com>\Z", outcome.message_id)


# --- addresses: IDNA 2008, and names as the email package reads them -------------------------------------------

@pytest.mark.parametrize("given, envelope", [
    ("a@ß.de", "a@xn--zca.de"),                         # IDNA 2003 made this a@ss.de, another domain
    ("Alice <alice@Bücher.Example>", "alice@xn--bcher-kva.example"),
    ("alice@bu\u0308cher.example", "alice@xn--bcher-kva.example"),     # decomposed: the same domain once composed
    ("alice@Example.ORG", "alice@example.org"),
    ("info@xn--zca.de", "info@xn--zca.de"),
])
def test_idn_domains_are_sent_as_written(server, given, envelope):
    mailer_for(server).send(request(to=given))
    received = server.messages[0]
    assert received.rcpt_tos == [envelope]
    assert received.message["To"].addresses[0].addr_spec == envelope


def test_display_names_with_dots_and_encoded_words_are_read_as_the_email_package_reads_them(server):
    mailer_for(server).send(request(to="John Q. Public <jq@example.com>, =?utf-8?q?J=C3=BCrgen?= <j@example.com>, "
                                       '"Doe, Jane" <jane@example.com>, smith@example.com (Smith)'))
    to = server.messages[0].message["To"]
    assert [(address.display_name, address.addr_spec) for address in to.addresses] == [
        ("John Q. Public", "jq@example.com"), ("Jürgen", "j@example.com"), ("Doe, Jane", "jane@example.com"),
        ("", "smith@example.com")]


# --- SMTPUTF8: a non-ASCII local part ---------------------------------------------------------------------------

def test_a_non_ascii_local_part_makes_a_utf8_message(server):
    mailer = mailer_for(server)
    prepared = mailer.prepare(request(to="Jörg <jörg@bücher.example>", subject="Grüße"))
    assert prepared.smtputf8 is True
    assert prepared.recipients == ["jörg@xn--bcher-kva.example"]
    head = prepared.message.split(b"\r\n\r\n", 1)[0]
    assert "To: Jörg <jörg@xn--bcher-kva.example>\r\n".encode("utf-8") in head      # RFC 6532: UTF-8 as it is
    assert "Subject: Grüße\r\n".encode("utf-8") in head
    plain = mailer.prepare(request(to="Jörg <joerg@bücher.example>", subject="Grüße"))
    assert plain.smtputf8 is False and plain.message.isascii()
    assert b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" in plain.message
    assert mailer.prepare(request(bcc="jörg@example.org")).smtputf8 is True       # the envelope needs it too


def test_a_non_ascii_local_part_is_delivered_with_smtputf8():
    handler = RecordingHandler()
    controller = serve_on_bound_socket(Controller(handler, hostname="127.0.0.1", port=free_port(),
                                                  enable_SMTPUTF8=True))
    controller.start()
    try:
        outcome = mailer_for(controller).send(request(to="jörg@example.org", subject="Grüße"))
    finally:
        controller.stop()
    assert outcome.accepted == ["jörg@example.org"]
    received = handler.messages[0]
    assert received.rcpt_tos == ["jörg@example.org"]
    assert email.message_from_bytes(received.data, policy=email.policy.SMTPUTF8)["To"] == "jörg@example.org"


# --- fuzz: whatever the mix, a mail is refused with ValueError or has exactly our header lines -------------------

# what encoded words decode to: hostile ones, and harmless ones that must still arrive intact
HOSTILE_PAYLOADS = ["Invoice\r\nReply-To: attacker@evil.example", "\r\n\r\n<h1>x</h1>", "a\x00b",
                    "\rBcc: victim@example.net", "\nX-Injected: 1", " \t ", "\x0b\x0c", "\x1b[31m", "\x85next",
                    "\u2028", "=?utf-8?q?=0D=0A?="]
SAFE_PAYLOADS = ["plain text", "Grüße", "\"quoted\" <x@y.z>, (c);", "日本語", "\u202eexe.pdf", "a" * 90, "",
                 "=?utf-8?q?plain?=", "Bcc: not a header", "tab-free  spaces"]
RAW = ["\r\n", "\n", "\r", "\x00", "\x7f", "\t", "\r\n ", "\r\n\t", " ", "  ", "\xa0", "\u200b", "\ufeff",
       "\ud800", "Bcc: victim@example.net", "\r\nBcc: victim@example.net", "=?", "?=", "=?utf-8?q?", "_",
       '"', "<", ">", ",", ";", "(", ")", "@", ":", "\\", ".", "[", "]"]
WORDS = ["Incident", "2095", "Grüße", "Störung", "日本語", "\U0001F512", "x" * 120, "word " * 30, "=3D", "SOAR"]
CHARSETS = ["utf-8", "UTF-8", "utf-8*en"]
HOSTILE_CHARSETS = CHARSETS + ["iso-8859-1", "us-ascii", "x-unknown", "unknown-8bit"]


def encoded_word(rng, hostile):
    text = rng.choice(HOSTILE_PAYLOADS + SAFE_PAYLOADS + WORDS if hostile else SAFE_PAYLOADS + WORDS)
    charset = rng.choice(HOSTILE_CHARSETS if hostile else CHARSETS)
    data = text.encode("utf-8", "surrogatepass") if charset.lower().startswith("utf") else \
        text.encode("latin-1", "replace")
    if rng.random() < 0.5:
        encoded = "".join("_" if byte == 32 and rng.random() < 0.5 else
                          chr(byte) if 48 <= byte <= 122 and chr(byte) not in "=?_" and rng.random() < 0.5 else
                          "={0:02X}".format(byte) for byte in data)
        return "=?{0}?{1}?{2}?=".format(charset, rng.choice("qQ"), encoded)
    return "=?{0}?{1}?{2}?=".format(charset, rng.choice("bB"), base64.b64encode(data).decode("ascii"))


def fuzz_text(rng, pieces=(1, 5)):
    """A hostile mix (raw controls, specials, any encoded word) now and then, else encoded words of harmless
    text, words, non-ASCII and long values between spaces: the mail must then arrive."""
    hostile = rng.random() < 0.15
    parts = []
    for _ in range(rng.randint(*pieces)):
        kind = rng.random()
        if kind < 0.4:
            parts.append(encoded_word(rng, hostile))
        elif kind < 0.65 and hostile:
            parts.append(rng.choice(RAW))
        else:
            parts.append(rng.choice(WORDS))
        if hostile:
            parts.append(rng.choice([" ", "", "\t", "  "]))
        else:                           # an encoded word must be followed by white space (RFC 2047 5)
            parts.append(" ")
    return "".join(parts)


def fuzz_address(rng, mailbox):
    name = fuzz_text(rng, (1, 3))
    form = rng.random()
    if form < 0.4:
        return "{0} <{1}>".format(name, mailbox)
    if form < 0.8 and "=?" not in name:         # an encoded word in quotes is refused (a defect): see above
        return '"{0}" <{1}>'.format(name.replace("\\", "\\\\").replace('"', '\\"'), mailbox)
    return mailbox


def fuzz_message_id(rng):
    form = rng.random()
    if form < 0.3:
        return None
    if form < 0.7:
        return "<fuzz.{0}@soar.example>".format(rng.randint(0, 10 ** 9))
    return "{0}@{1}".format(fuzz_text(rng, (1, 2)), rng.choice(["soar.example", fuzz_text(rng, (1, 2))]))


def fuzz_case(rng, number):
    fields = {"subject": fuzz_text(rng), "body": "fuzz body {0}".format(number),
              "sender": fuzz_address(rng, "soar@example.com"),
              "to": ", ".join(fuzz_address(rng, "to{0}@example.com".format(n)) for n in range(rng.randint(1, 3)))}
    if rng.random() < 0.5:
        fields["cc"] = ", ".join(fuzz_address(rng, "cc{0}@example.org".format(n)) for n in range(rng.randint(1, 2)))
    fields["message_id"] = fuzz_message_id(rng)
    fields["in_reply_to"] = fuzz_message_id(rng)
    fields["importance"] = rng.choice([None, "low", "normal", "high"])
    names = [fuzz_text(rng, (1, 3)) + rng.choice([".pdf", ".txt", ""]) for _ in range(rng.randint(0, 2))]
    if names:
        fields["attachments"] = "*"
    return fields, names


def expected_outer_names(fields):
    names = ["From", "To"] + (["Cc"] if fields.get("cc") else []) + ["Subject", "Date", "Message-ID"]
    if fields.get("in_reply_to"):
        names += ["In-Reply-To", "References"]
    if fields.get("importance"):
        names += ["Importance", "X-Priority"]
    return names + ["MIME-Version"]


INPUT_NAMES = ("mail_subject", "mail_from", "mail_to", "mail_cc", "mail_message_id", "mail_in_reply_to",
               "ttachment")


@pytest.mark.parametrize("seed", [2047, 5322])
def test_fuzzed_headers_are_refused_or_delivered_with_exactly_our_header_lines(server, seed):
    rng = random.Random(seed)
    refused = delivered = 0
    for number in range(150):
        fields, names = fuzz_case(rng, number)
        case = "seed {0} case {1}: {2!r} attachments {3!r}".format(seed, number, fields, names)
        before = len(server.messages)
        try:
            outcome = mailer_for(server, names).send(request(**fields))
        except ValueError as err:
            refused += 1
            assert any(name in str(err) for name in INPUT_NAMES), case + " -> " + str(err)
            assert len(server.messages) == before, case
            continue
        delivered += 1
        assert len(server.messages) == before + 1, case
        received = server.messages[-1]
        names_received = header_names(received.data)
        outer = expected_outer_names(fields)
        assert names_received[:len(outer)] == outer, case
        assert set(names_received[len(outer):]) <= set(CONTENT_HEADERS), case
        assert len(names_received) - len(outer) == len(set(names_received[len(outer):])), case
        message = received.message
        assert message["Message-ID"] == outcome.message_id, case
        assert message.get_body(("plain",)).get_content() == "fuzz body {0}\n".format(number), case
        attachments = list(message.iter_attachments())
        assert [part.get_filename() for part in attachments] == [read_filename(compose.safe_attachment_name(name))
                                                                 for name in names], case
        assert all(part.get_payload(decode=True) == SAMPLE_BYTES for part in attachments), case
        if attachments:
            parts = part_header_names(received.data, message.get_boundary())
            assert parts == [["Content-Type", "Content-Transfer-Encoding"]] + [
                ["Content-Type", "Content-Transfer-Encoding", "Content-Disposition"]] * len(names), case
    assert refused and delivered          # the mix exercises both outcomes
