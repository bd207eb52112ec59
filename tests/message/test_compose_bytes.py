# -*- coding: utf-8 -*-
"""compose writes text parts and multipart framing itself: the bytes must be the email package's own."""

import email
import email.policy

import pytest

from fn_outbound_email.lib.message import compose
from tests.support.mime_oracle import matches_email_package

TEXT_BODIES = [
    "", "plain", "one line\n", "no final newline", "\n\n\n", "line\n.dot line\n..two\nFrom here\n",
    "crlf\r\nline ends\r\n", "cr\ronly", "form\x0cfeed, vertical\x0btab, \x1cseparators\x1d\x1e",
    "trailing space \nand tab\t\n", "= sign, =?utf-8?q?encoded_look-alike?= and =3D",
    "x" * 78, "x" * 79, "x" * 900, "x" * 901, ("word " * 400).strip(),
    "Grüße aus Zürich\n", "é" * 120, "Ångström Å", "a\u2028b\u2029c\x85d", "emoji \U0001F512 lock",
    "tab\tinside\n   leading spaces\n", "\x00nul\x7fdel",
]
HTML_BODIES = [
    "<p>x</p>", "<p>Grüße</p><p>zweite Zeile</p>", "<table><tr><td>k</td><td>v</td></tr></table>" * 40,
    "<pre>" + "long " * 300 + "</pre>", "<p>a</p>\r\n<p>b</p>",
]
ATTACHMENT_SETS = [
    [compose.Attachment("report.pdf", b"%PDF-1.4 tiny")],
    [compose.Attachment("a.bin", b""), compose.Attachment("notes.txt", b"line\n.dot line\n")],
    [compose.Attachment("Prüfbericht März.xlsx", bytes(range(256)) * 3)],
    [compose.Attachment('quote "and" semicolon; name.txt', b"x")],
    [compose.Attachment("a very long attachment name that needs folding " * 3 + ".log", b"log")],
    [compose.Attachment("../../etc/passwd", b"root"), compose.Attachment("typed", b"{}", "application/json")],
    [compose.Attachment("invoice\u202efdp.exe", b"MZ"), compose.Attachment("\u200bZero width\ufeff.txt", b"z")],
]


@pytest.mark.parametrize("body", TEXT_BODIES)
def test_plain_text_part_is_the_email_packages(body):
    ours, theirs = matches_email_package(body, html=False)
    assert ours == theirs


@pytest.mark.parametrize("body", HTML_BODIES + TEXT_BODIES[:6])
def test_alternative_parts_are_the_email_packages(body):
    ours, theirs = matches_email_package(body, html=True)
    assert ours == theirs


@pytest.mark.parametrize("attachments", ATTACHMENT_SETS)
@pytest.mark.parametrize("body, html", [("text body", False), ("<p>html body</p>", True)])
def test_mixed_parts_are_the_email_packages(body, html, attachments):
    ours, theirs = matches_email_package(body, attachments, html=html)
    assert ours == theirs
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert [part.get_payload(decode=True) for part in parsed.iter_attachments()] == \
        [item.content for item in attachments]


def test_text_with_a_line_over_900_bytes_after_a_form_feed_split_is_quoted_printable():
    # str.splitlines() would split at the form feed and call every line short; the bytes do not
    body = "a" * 600 + "\x0c" + "b" * 600
    ours = compose.entity_bytes(compose.build_content(body, html=False))
    assert b"Content-Transfer-Encoding: quoted-printable" in ours
    assert max(len(line) for line in ours.split(b"\r\n")) <= 78


def test_the_boundary_is_in_no_text_part(monkeypatch):
    taken = "===============_{0}==".format("0" * 24)
    tokens = iter(["0" * 24, "1" * 24])
    monkeypatch.setattr(compose.secrets, "token_hex", lambda size: next(tokens))
    ours = compose.entity_bytes(compose.build_content("<p>{0}</p>".format(taken), html=True))
    assert b'boundary="===============_' + b"1" * 24 + b'=="' in ours


OUTER_CASES = [
    dict(sender="SOAR <soar@example.com>", to="alice@example.com", subject="Incident 2095"),
    dict(sender="Jürgen Müller <jm@example.com>", to="A <a@example.com>, b@example.org", cc='"Doe, Jane" <j@x.org>',
         subject="Störung: " + "lang " * 20, message_id="<1.2@soar.example>", in_reply_to="<orig.77@mail.example>",
         importance="high"),
    dict(sender="soar@example.com", to="jörg@example.org", subject="Grüße", smtputf8=True),
]


@pytest.mark.parametrize("case", OUTER_CASES)
def test_outer_headers_are_the_email_packages(case):
    """The outer header block is what EmailMessage writes with policy.SMTP (policy.SMTPUTF8 for a message that
    needs SMTPUTF8), header for header."""
    from email.message import EmailMessage
    from email.utils import format_datetime
    from datetime import datetime, timezone
    from fn_outbound_email.lib.message.addresses import parse_address, parse_address_list
    case = dict(case)
    date = datetime(2026, 11, 29, 12, 20, tzinfo=timezone.utc)
    headers = compose.OuterHeaders(sender=parse_address(case.pop("sender"), "f"),
                                   to=parse_address_list(case.pop("to"), "t"),
                                   cc=parse_address_list(case.pop("cc", None), "c"), date=date, **case)
    ours = compose.assemble(headers, compose.build_content("x")).split(b"\r\n\r\n")[0] + b"\r\n"
    message = EmailMessage(policy=email.policy.SMTPUTF8 if headers.smtputf8 else email.policy.SMTP)
    message["From"] = [headers.sender]
    message["To"] = headers.to
    if headers.cc:
        message["Cc"] = headers.cc
    message["Subject"] = headers.subject
    message["Date"] = format_datetime(date)
    for name, value in (("Message-ID", headers.message_id), ("In-Reply-To", headers.in_reply_to),
                        ("References", headers.in_reply_to), ("Importance", headers.importance),
                        ("X-Priority", compose.X_PRIORITY.get(headers.importance))):
        if value:
            message[name] = value
    message["MIME-Version"] = "1.0"
    message.set_content("x", cte="7bit")
    theirs = message.as_bytes().split(b"\r\n\r\n")[0] + b"\r\n"
    theirs = b"".join(line + b"\r\n" for line in theirs[:-2].split(b"\r\n") if not line.startswith(b"Content-"))
    ours = b"".join(line + b"\r\n" for line in ours[:-2].split(b"\r\n") if not line.startswith(b"Content-"))
    assert ours == theirs
