# -*- coding: utf-8 -*-
"""Composing the MIME message: the email package writes it (MIMEPart/EmailMessage, policy.SMTP, BytesGenerator).

A message is built in two layers: the *content entity* (body, alternatives,
attachments: everything S/MIME protects) and the *outer headers* (From, To,
Subject, ...). ``assemble`` puts the outer header lines in front of the entity
bytes so a signed entity reaches the wire byte for byte as it was signed.

Every header line, text part and multipart frame is the email package's own
output, under the policies of ``header_policy``, which check every header
field at the one place the generator folds it: the folded line must be exactly
one header field, and an address header must read back as the addresses
given. One part is still written by hand, because it pays for
itself: attachment bodies are base64-encoded straight into the message bytes
(``_Base64Body`` says why, with the figure).
"""

import base64
import io
import mimetypes
import ntpath
import posixpath
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import make_msgid
from typing import List, Optional

from fn_outbound_email.lib.message.addresses import (ATEXT, CONTROL_CHARS, LONE_SURROGATES, check_header_text,
                                                     decoded_header_text, shown)
from fn_outbound_email.lib.message.header_policy import CONTENT_POLICY, MAX_LINE_OCTETS, OUTER_POLICY, OUTER_POLICY_UTF8
from fn_outbound_email.lib.message.html_tokens import looks_like_html
from fn_outbound_email.lib.message.plain_text import html_to_text

# X-Priority as mail clients read it: 1 highest, 3 normal, 5 lowest
X_PRIORITY = {"high": "1 (Highest)", "normal": "3 (Normal)", "low": "5 (Lowest)"}
# RFC 5322 3.6.4 msg-id without the obsolete forms: dot-atom-text "@" (dot-atom-text / no-fold-literal)
_DOT_ATOM_TEXT = r"[{0}]+(?:\.[{0}]+)*".format(ATEXT)
_MESSAGE_ID = re.compile(r"<{0}@(?:{0}|\[[!-Z^-~]*\])>\Z".format(_DOT_ATOM_TEXT))
# what email.header.decode_header decodes as an RFC 2047 encoded word
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?.*?\?=")
# an id we send may come back as a reply's In-Reply-To: the longest header name it is written with
MAX_MESSAGE_ID = MAX_LINE_OCTETS - len("In-Reply-To: ")
# the longest line a 7bit part may have (RFC 5321 allows 998 octets; the rest is margin)
MAX_7BIT_LINE = 900


@dataclass
class Attachment:
    name: str
    content: bytes
    content_type: Optional[str] = None

    @property
    def mime_type(self):
        """(maintype, subtype): as given, else guessed from the name, else application/octet-stream."""
        content_type = self.content_type or mimetypes.guess_type(self.name)[0] or "application/octet-stream"
        maintype, _, subtype = content_type.partition("/")
        return maintype or "application", subtype or "octet-stream"


@dataclass
class OuterHeaders:
    sender: object                     # email.headerregistry.Address
    to: List[object]
    cc: List[object] = field(default_factory=list)
    subject: Optional[str] = None
    message_id: Optional[str] = None
    in_reply_to: Optional[str] = None
    importance: Optional[str] = None   # low / normal / high
    date: Optional[object] = None      # datetime; now when None
    smtputf8: bool = False             # an address has a non-ASCII local part: UTF-8 headers (RFC 6532)


def safe_attachment_name(name):
    """The file name a recipient sees: last path component, no control, bidi or other format characters.

    Attachment names come from SOAR users; they are only ever a MIME parameter,
    never a path, but a name like ``../x`` is still reduced so no mail client
    is tempted to treat it as one. Format characters (Unicode category Cf: bidi
    overrides such as U+202E, zero-width characters) are dropped, as they let
    ``invoice\u202efdp.exe`` show as "invoiceexe.pdf". A NUL (readers that stop
    there see another name) or a lone surrogate (not text) refuses the name.

    Mail readers decode RFC 2047 encoded words in a file name too (Python's
    ``get_filename`` among them), so it is the decoded name that is cleaned:
    ``=?utf-8?q?=2E=2E=2Fx?=`` is ``../x`` to a reader. ``_attachment_part``
    then reads the written name back and refuses it if a reader would see
    anything else.
    """
    text = str(name or "")
    if "\x00" in text:
        raise ValueError("Attachment {0} has a NUL character in its name; rename the attachment".format(shown(text)))
    if LONE_SURROGATES.search(text):
        raise ValueError("Attachment {0} has a lone surrogate (U+D800..U+DFFF) in its name, which is not text; "
                         "rename the attachment".format(shown(text)))
    source = "The name of attachment {0}".format(shown(text))
    # control characters written as they are are dropped (below); hidden in an encoded word they refuse the name
    text = check_header_text(CONTROL_CHARS.sub("", text), source)
    decoded = decoded_header_text(text, source)
    if "\x00" in decoded or LONE_SURROGATES.search(decoded):
        raise ValueError("{0} holds an RFC 2047 encoded word that decodes to a NUL or a lone surrogate; rename the "
                         "attachment".format(source))
    decoded = "".join(char for char in decoded if unicodedata.category(char) != "Cf")
    base = posixpath.basename(ntpath.basename(decoded))
    base = CONTROL_CHARS.sub("", base).strip().lstrip(".") or "attachment"
    return check_header_text(base, source)


def _check_read_back(part, filename, name):
    """Raise ValueError unless a reader of ``part``'s header lines (as written, then parsed) gets ``filename``.

    Folded by policy.SMTP: CONTENT_POLICY's folding without its checks, which run once, when the message is
    written."""
    head = b"".join(policy.SMTP.fold_binary(field, value) for field, value in part.raw_items())
    read_back = BytesParser(policy=policy.default).parsebytes(head + b"\r\n", headersonly=True).get_filename()
    if read_back != filename:
        raise ValueError("Attachment {0} would reach its recipients named {1}, not {2} (its name still holds "
                         "encoded text a mail reader decodes); rename the attachment".format(
                             shown(name), shown(read_back), shown(filename)))


@dataclass
class ContentEntity:
    """The content entity (everything S/MIME protects) as output pieces: bytes, and attachment bodies
    that are base64-encoded only when the message is written."""
    pieces: list


def build_content(body, attachments=(), html=None):
    """The content entity: text, or text+HTML alternatives, plus attachments, built and written by the
    email package (``set_content`` / ``make_alternative`` / ``make_mixed``, then its generator).

    ``html`` None detects HTML in the body; False sends it as plain text whatever it holds.

    Each attachment part is generated with a one-line marker as its body; the marker line is then
    replaced by the attachment's base64 lines (``_Base64Body``), written only when the message is.
    """
    body = body or ""
    texts = [body]
    entity = MIMEPart(policy=CONTENT_POLICY)
    if looks_like_html(body) if html is None else html:
        plain = html_to_text(body)
        texts.append(plain)
        entity.set_content(plain, **_text_options(plain, "plain"))
        entity.make_alternative(boundary=_new_boundary(texts))
        entity.add_alternative(body, **_text_options(body, "html"))
    else:
        entity.set_content(body, **_text_options(body, "plain"))
    if not attachments:
        return ContentEntity([entity.as_bytes()])
    entity.make_mixed(boundary=_new_boundary(texts))
    # random, so no body holds a marker line by chance or by design; _with_bodies checks it all the same
    marker_prefix = "outbound-email-attachment-{0}-".format(secrets.token_hex(16))
    bodies = []
    for number, attachment in enumerate(attachments):
        marker = marker_prefix + str(number)
        entity.attach(_attachment_part(attachment, marker))
        bodies.append((marker.encode("ascii") + b"\r\n", _Base64Body(attachment.content)))
    return ContentEntity(_with_bodies(entity.as_bytes(), bodies))


def _text_options(text, subtype):
    """``set_content`` options for a UTF-8 text part: 7bit when that is safe, else quoted-printable.

    The email package's own choice (no cte) takes quoted-printable or base64 for any line over 78 octets;
    the app has always sent readable 7bit up to 900 (S/MIME and old relays want 7-bit clean, not short).
    Lines are counted as the email package splits them (on CR, LF and CRLF of the encoded bytes).
    """
    lines = text.encode("utf-8").splitlines()
    seven_bit = text.isascii() and max(map(len, lines), default=0) <= MAX_7BIT_LINE
    return {"subtype": subtype, "charset": "utf-8", "cte": "7bit" if seven_bit else "quoted-printable"}


def _new_boundary(texts):
    """A multipart boundary: random, and in none of the text parts (base64 never holds '=' or '_' inside).

    Chosen here rather than by the generator: the generator's check that no body line is the delimiter
    misses a line that ends in CRLF, policy.SMTP's line end (CPython gh-148192, fixed in 2026; 3.11.7 has
    it), and its boundary comes from ``random``, not ``secrets``.
    """
    while True:
        boundary = "===============_{0}==".format(secrets.token_hex(12))
        if not any(boundary in text for text in texts):
            return boundary


def _attachment_part(attachment, marker):
    """An attachment part with the email package's headers (RFC 2231 file name) and ``marker`` as its body.

    Text attachments are sent as bytes too: their charset is unknown.
    """
    maintype, subtype = attachment.mime_type
    filename = safe_attachment_name(attachment.name)
    part = MIMEPart(policy=CONTENT_POLICY)
    part.set_content(b"", maintype=maintype, subtype=subtype, filename=filename)
    _check_read_back(part, filename, attachment.name)
    part.set_payload(marker + "\n")
    return part


def _with_bodies(generated, bodies):
    """The generated entity as pieces, each (marker line, body) pair's marker line replaced by the body."""
    pieces = []
    rest = generated
    for marker_line, body in bodies:
        if generated.count(marker_line) != 1:
            raise RuntimeError("an attachment marker is not in the composed message exactly once")
        before, _, rest = rest.partition(marker_line)
        pieces.extend([before, body])
    pieces.append(rest)
    return pieces


class _Base64Body:
    """An attachment body written as base64 in 76-character CRLF lines, as the email package writes it.

    Hand-written because it pays for itself in memory: the email package holds a big attachment several
    times over (the base64 text, its lines, each multipart level's copy of the generated text). Sending a
    25 MiB attachment (benchmarks' memory_ratio, target 3) raised peak RSS by 2.36 times the attachment this
    way and by 6.62 times with ``add_attachment`` (2026-12-06, 2 cores, Python 3.11.7); benchmarks'
    compose_memory_ratio keeps that comparison in every run.
    """

    CHUNK = 57 * 1024           # whole base64 lines per step: about 78 KiB of output (and of temporaries)

    def __init__(self, content):
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.content = memoryview(content)

    def __len__(self):
        full_lines, rest = divmod(len(self.content), 57)
        return full_lines * 78 + ((rest + 2) // 3 * 4 + 2 if rest else 0)

    def write_to(self, stream):
        for start in range(0, len(self.content), self.CHUNK):
            stream.write(base64.encodebytes(self.content[start:start + self.CHUNK]).replace(b"\n", b"\r\n"))


def _join(pieces):
    """The pieces as one bytes object, allocated once at its final size."""
    size = sum(len(piece) for piece in pieces)
    stream = io.BytesIO()
    if size:
        # sized up front, so getvalue() hands over the buffer itself instead of a copy (CPython's BytesIO)
        stream.seek(size - 1)
        stream.write(b"\0")
        stream.seek(0)
    for piece in pieces:
        if isinstance(piece, _Base64Body):
            piece.write_to(stream)
        else:
            stream.write(piece)
    if stream.tell() != size:
        raise AssertionError("composed {0} bytes, expected {1}".format(stream.tell(), size))
    return stream.getvalue()


def entity_bytes(entity):
    return _join(entity.pieces)


def normalize_message_id(value, input_name):
    """``id@host`` or ``<id@host>`` → ``<id@host>``, exactly as it goes on the wire; anything else is refused.

    RFC 5322 msg-id syntax (no obsolete forms), ASCII only, no RFC 2047 encoded word (a reader would decode
    it), and short enough that the header line stays within 998 octets: the email package would otherwise
    write it encoded or over-long, and the id sent would differ from the one reported.
    """
    if value is None or not str(value).strip():
        return None
    text = check_header_text(str(value).strip(), input_name)
    message_id = text if text.startswith("<") else "<{0}>".format(text)
    if len(message_id) > MAX_MESSAGE_ID:
        raise ValueError("{0} is {1} characters long; a message id may have at most {2}, so that its header line "
                         "stays within {3} octets: {4}".format(input_name, len(message_id), MAX_MESSAGE_ID,
                                                               MAX_LINE_OCTETS, shown(text)))
    if _ENCODED_WORD.search(message_id):
        raise ValueError("{0}: '{1}' holds an RFC 2047 encoded word (=?...?=); a message id is plain ASCII of the "
                         "form id@host".format(input_name, text))
    if not message_id.isascii() or not _MESSAGE_ID.match(message_id):
        raise ValueError("{0}: '{1}' is not a message id of the form id@host (RFC 5322: ASCII letters, digits and "
                         "!#$%&'*+-/=?^_`{{|}}~ in dot-separated words, '@', then a domain or a [literal])".format(
                             input_name, text))
    return message_id


def new_message_id(sender, local_part=None):
    """A Message-ID at the sender's domain: random, or ``local_part`` (the same for every delivery of one SOAR
    invocation, lib/soar/invocation.py) when given."""
    if local_part:
        return "<{0}@{1}>".format(local_part, sender.domain)
    return make_msgid(domain=sender.domain)


def assemble(headers, content):
    """The whole message as bytes: the outer header block as EmailMessage writes it, then the content entity."""
    header_policy = OUTER_POLICY_UTF8 if headers.smtputf8 else OUTER_POLICY
    outer = EmailMessage(policy=header_policy)
    for name, value in _outer_fields(headers):
        outer[name] = value
    # the generator ends the block with a blank line; the content entity's own headers come first
    header_block = outer.as_bytes()[:-2]
    if isinstance(content, (bytes, bytearray)):
        content = memoryview(content)
        # an S/MIME entity brings its own MIME-Version line; the outer block already has one
        if bytes(content[:13]).lower() == b"mime-version:":
            content = content[bytes(content[:100]).index(b"\n") + 1:]
        return _join([header_block, content])
    return _join([header_block] + content.pieces)


def _outer_fields(headers):
    """(name, value) of each outer header in order; a value is text, a datetime or a list of Addresses."""
    fields = [("From", [headers.sender])]
    if headers.to:
        fields.append(("To", headers.to))
    if headers.cc:
        fields.append(("Cc", headers.cc))
    # Bcc recipients are only in the SMTP envelope: a Bcc header would disclose them
    fields.append(("Subject", headers.subject or ""))
    fields.append(("Date", headers.date or _now()))
    if headers.message_id:
        fields.append(("Message-ID", headers.message_id))
    if headers.in_reply_to:
        fields.extend([("In-Reply-To", headers.in_reply_to), ("References", headers.in_reply_to)])
    if headers.importance:
        fields.extend([("Importance", headers.importance), ("X-Priority", X_PRIORITY[headers.importance])])
    fields.append(("MIME-Version", "1.0"))
    return fields


def _now():
    from datetime import datetime
    return datetime.now().astimezone()
