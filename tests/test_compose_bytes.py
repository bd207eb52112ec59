# -*- coding: utf-8 -*-
"""compose writes text parts and multipart framing itself: the bytes must be the email package's own."""

import email
import email.policy

import pytest

from fn_outbound_email.lib import compose
from tests.mime_oracle import matches_email_package

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
