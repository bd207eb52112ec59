# -*- coding: utf-8 -*-
"""Attachment bodies are base64-encoded straight into the message (compose._Base64Body).

The output must be byte for byte what the email package writes, and composing must not hold the
attachment several times over (the benchmarks' memory_ratio measures the whole send in RSS).
"""

import email
import email.policy
import os
import tracemalloc

import pytest

from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.message.addresses import parse_address
from tests.support.mime_oracle import matches_email_package

CHUNK = compose._Base64Body.CHUNK


@pytest.mark.parametrize("size", [0, 1, 2, 3, 56, 57, 58, 114, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 57])
def test_encoded_body_matches_the_email_package_at_every_boundary(size):
    data = os.urandom(size)
    attachments = [compose.Attachment("data.bin", data), compose.Attachment("notes.txt", b"line\n.dot line\n")]
    ours, theirs = matches_email_package("<p>See the <b>files</b></p>", attachments, html=True)
    assert ours == theirs
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert [part.get_payload(decode=True) for part in parsed.iter_attachments()] == [data, b"line\n.dot line\n"]


def test_assembled_message_carries_the_attachment_and_headers():
    data = os.urandom(100000)
    headers = compose.OuterHeaders(sender=parse_address("soar@example.com", "mail_from"),
                                   to=[parse_address("alice@example.com", "mail_to")], subject="files",
                                   message_id="<1@example.com>")
    message = compose.assemble(headers, compose.build_content("body", [compose.Attachment("a.bin", data)]))
    assert isinstance(message, bytes)
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["Subject"] == "files" and parsed["Message-ID"] == "<1@example.com>"
    assert [part.get_payload(decode=True) for part in parsed.iter_attachments()] == [data]
    assert b"outbound-email-attachment-" not in message


def test_composing_a_big_attachment_holds_it_about_twice_not_six_times():
    data = os.urandom(4 * 1024 * 1024)
    headers = compose.OuterHeaders(sender=parse_address("soar@example.com", "mail_from"),
                                   to=[parse_address("alice@example.com", "mail_to")], subject="big")
    tracemalloc.start()
    try:
        message = compose.assemble(headers, compose.build_content("body", [compose.Attachment("big.bin", data)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the message itself is 4/3 * 78/76 of the attachment; the email package's own path peaked above 6x
    assert len(message) > 1.36 * len(data)
    assert peak < 2 * len(data), "composing peaked at {0:.1f}x the attachment".format(peak / len(data))
