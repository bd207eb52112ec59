# -*- coding: utf-8 -*-
"""Composing the MIME message: exactly what ``EmailMessage`` with ``email.policy.SMTP`` writes.

A message is built in two layers: the *content entity* (body, alternatives,
attachments: everything S/MIME protects) and the *outer headers* (From, To,
Subject, ...). ``assemble`` puts the header lines in front of the entity bytes
so a signed entity reaches the wire byte for byte as it was signed.

Parts whose bytes have one fixed form (UTF-8 text parts, multipart framing,
short ASCII header lines) are written directly; everything that needs encoding
or folding (non-ASCII display names, long headers, RFC 2231 file names) is
written by the email package. tests/test_compose_bytes.py holds the output to
the email package's own, byte for byte.
"""

import base64
import io
import mimetypes
import ntpath
import posixpath
import re
import secrets
from dataclasses import dataclass, field
from email import policy, quoprimime
from email.message import MIMEPart
from email.utils import format_datetime, make_msgid
from typing import List, Optional

from fn_outbound_email.lib import html_tokens
from fn_outbound_email.lib.addresses import CONTROL_CHARS, check_header_text
from fn_outbound_email.lib.html_tokens import END, TEXT, looks_like_html

SMTP_POLICY = policy.SMTP
# X-Priority as mail clients read it: 1 highest, 3 normal, 5 lowest
X_PRIORITY = {"high": "1 (Highest)", "normal": "3 (Normal)", "low": "5 (Lowest)"}
_LINE_TAGS = frozenset(("tr", "li"))
_CELL_TAGS = frozenset(("td", "th"))
_BLOCK_TAGS = frozenset(("p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre",
                         "blockquote"))
_HIDDEN_TAGS = frozenset(("script", "style", "head", "title"))
# printable ASCII, single spaces, no edge spaces, no '=?' (an encoded word would be decoded and re-encoded)
_PLAIN_HEADER = re.compile(r"^(?!.*=\?)(?!.*  )[!-~](?:[ -~]*[!-~])?$")
_SPACES = re.compile(r"[ \t\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_MESSAGE_ID = re.compile(r"^<?[^<>\s@]+@[^<>\s@]+>?$")


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


def html_to_text(body):
    """A readable plain-text rendering of an HTML body for the text/plain alternative."""
    pieces = []
    hidden_depth = 0            # inside head/title (script and style come without content)
    link = None                 # the open link: (href, index of the first piece of its text)
    for kind, value, attrs, self_closing in html_tokens.tokens(body):
        if kind is TEXT:
            if not hidden_depth:
                pieces.append(value)
        elif value in _HIDDEN_TAGS:
            if kind is END:
                hidden_depth = max(0, hidden_depth - 1)
            elif not self_closing:
                hidden_depth += 1
        elif hidden_depth:
            pass
        elif kind is END:
            if value in _BLOCK_TAGS or value in _LINE_TAGS:
                pieces.append("\n")
            elif value in _CELL_TAGS:
                pieces.append(" ")
            elif value == "a" and link:
                _end_link(pieces, *link)
                link = None
        elif value == "br":
            pieces.append("\n")
        elif value == "hr":                  # a void block: its line break before and after at once
            pieces.append("\n\n")
        elif value in _BLOCK_TAGS:
            pieces.append("\n\n" if self_closing else "\n")
        elif self_closing:
            pass
        elif value in _LINE_TAGS and not (pieces and pieces[-1][-1:] == "\n"):   # an unclosed item ends its line
            pieces.append("\n")
        elif value in _CELL_TAGS and pieces and pieces[-1][-1:] not in (" ", "\n"):
            pieces.append(" ")
        elif value == "a":
            if link:                         # links do not nest: a new one ends the open one, as browsers read it
                _end_link(pieces, *link)
            link = (html_tokens.href_of(attrs), len(pieces))
    lines = (line.strip() for line in _SPACES.sub(" ", "".join(pieces)).splitlines())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


def _end_link(pieces, href, first):
    """Follow a link's text with its address, unless the text already is the address."""
    link_text = " ".join("".join(pieces[first:]).split())
    if href and href != link_text and not href.startswith("mailto:"):
        pieces.append(" <{0}>".format(href))


def safe_attachment_name(name):
    """The file name a recipient sees: last path component, no control characters.

    Attachment names come from SOAR users; they are only ever a MIME parameter,
    never a path, but a name like ``../x`` is still reduced so no mail client
    is tempted to treat it as one.
    """
    base = posixpath.basename(ntpath.basename(str(name or "")))
    base = CONTROL_CHARS.sub("", base).strip().lstrip(".") or "attachment"
    return base


# the longest line a 7bit part may have (RFC 5321 allows 998 octets; the rest is margin)
MAX_7BIT_LINE = 900


@dataclass
class ContentEntity:
    """The content entity (everything S/MIME protects) as output pieces: bytes, and attachment bodies
    that are base64-encoded only when the message is written."""
    pieces: list


def build_content(body, attachments=(), html=None):
    """The content entity: text, or text+HTML alternatives, plus attachments.

    ``html`` None detects HTML in the body; False sends it as plain text whatever it holds.

    The bytes are what ``EmailMessage.set_content`` / ``make_alternative`` / ``add_attachment`` with
    ``policy.SMTP`` write (tests/test_compose_bytes.py compares them for a catalogue of bodies). The text
    parts and the multipart framing have one fixed form, so they are written here; an attachment's
    headers (RFC 2231 file names) come from the email package itself. Building the email package's
    object tree for every mail cost more than rendering the template.
    """
    body = body or ""
    texts = [body]
    if looks_like_html(body) if html is None else html:
        plain = html_to_text(body)
        texts.append(plain)
        entity = _multipart("alternative", [_text_part(plain, "plain"), _text_part(body, "html")], texts)
    else:
        entity = _text_part(body, "plain")
    if attachments:
        entity = _multipart("mixed", [entity] + [_attachment_part(item) for item in attachments], texts)
    return ContentEntity(entity)


def _text_part(text, subtype):
    """A UTF-8 text part: 7bit when that is safe, else quoted-printable (S/MIME and old relays want 7-bit
    clean). Lines are split as the email package splits them (on CR, LF and CRLF of the encoded bytes)."""
    lines = text.encode("utf-8").splitlines()
    if text.isascii() and max(map(len, lines), default=0) <= MAX_7BIT_LINE:
        encoding, encoded = "7bit", b"\r\n".join(lines) + b"\r\n"
    else:
        encoding = "quoted-printable"
        encoded = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), SMTP_POLICY.max_line_length,
                                         eol="\r\n").encode("ascii")
    head = 'Content-Type: text/{0}; charset="utf-8"\r\nContent-Transfer-Encoding: {1}\r\n\r\n'.format(
        subtype, encoding)
    return [head.encode("ascii"), encoded]


def _multipart(subtype, parts, texts):
    """A multipart entity around ``parts`` (each a list of pieces), framed as the email generator frames it."""
    boundary = _new_boundary(texts)
    # the boundary parameter never fits on the first line: policy.SMTP folds it onto its own
    pieces = ['Content-Type: multipart/{0};\r\n boundary="{1}"\r\n\r\n--{1}\r\n'.format(
        subtype, boundary).encode("ascii")]
    delimiter = "\r\n--{0}\r\n".format(boundary).encode("ascii")
    for number, part in enumerate(parts):
        if number:
            pieces.append(delimiter)
        pieces.extend(part)
    pieces.append("\r\n--{0}--\r\n".format(boundary).encode("ascii"))
    return pieces


def _attachment_part(attachment):
    """An attachment part: headers from the email package (RFC 2231 file name), base64 body written later.

    Text attachments are sent as bytes too: their charset is unknown.
    """
    maintype, subtype = attachment.mime_type
    content = attachment.content
    if isinstance(content, str):
        content = content.encode("utf-8")
    part = MIMEPart(policy=SMTP_POLICY)
    part.set_content(b"", maintype=maintype, subtype=subtype, filename=safe_attachment_name(attachment.name))
    # headers, the blank line and (for no bytes) an empty body; the email package would hold a big attachment
    # several times over (base64 str, its lines, the generator's copy), so the body is encoded into the output
    return [part.as_bytes(policy=SMTP_POLICY), _Base64Body(content)]


def _new_boundary(texts):
    """A multipart boundary: random, and in none of the text parts (base64 never contains '_')."""
    while True:
        boundary = "===============_{0}==".format(secrets.token_hex(12))
        if not any(boundary in text for text in texts):
            return boundary


class _Base64Body:
    """An attachment body written as base64 in 76-character CRLF lines, as the email package writes it."""

    CHUNK = 57 * 1024           # whole base64 lines per step: about 78 KiB of output (and of temporaries)

    def __init__(self, content):
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
    """``id@host`` or ``<id@host>`` → ``<id@host>``; anything else is refused."""
    if value is None or not str(value).strip():
        return None
    value = check_header_text(str(value).strip(), input_name)
    if not _MESSAGE_ID.match(value):
        raise ValueError("{0}: '{1}' is not a message id of the form id@host".format(input_name, value))
    return "<{0}>".format(value.strip("<>"))


def new_message_id(sender):
    return make_msgid(domain=sender.domain)


def assemble(headers, content):
    """The whole message as bytes: outer header lines, then the content entity bytes."""
    fields = [("From", [headers.sender])]
    if headers.to:
        fields.append(("To", headers.to))
    if headers.cc:
        fields.append(("Cc", headers.cc))
    # Bcc recipients are only in the SMTP envelope: a Bcc header would disclose them
    fields.append(("Subject", headers.subject or ""))
    fields.append(("Date", format_datetime(headers.date) if headers.date else format_datetime(_now(), usegmt=False)))
    if headers.message_id:
        fields.append(("Message-ID", headers.message_id))
    if headers.in_reply_to:
        fields.extend([("In-Reply-To", headers.in_reply_to), ("References", headers.in_reply_to)])
    if headers.importance:
        fields.extend([("Importance", headers.importance), ("X-Priority", X_PRIORITY[headers.importance])])
    fields.append(("MIME-Version", "1.0"))
    header_block = b"".join(header_line(name, value) for name, value in fields)
    if isinstance(content, (bytes, bytearray)):
        content = memoryview(content)
        # an S/MIME entity brings its own MIME-Version line; the outer block already has one
        if bytes(content[:13]).lower() == b"mime-version:":
            content = content[bytes(content[:100]).index(b"\n") + 1:]
        return _join([header_block, content])
    return _join([header_block] + content.pieces)


def header_line(name, value):
    """One header field as policy.SMTP writes it, CRLF included; ``value`` is text or a list of Addresses.

    A short printable ASCII value is written as it is, which is exactly what the
    email package would write; anything else (non-ASCII display names, long
    values that need folding, encoded-word look-alikes) goes through the email
    package's header objects. Parsing every header there cost more than
    everything else in composing a message.
    """
    text = ", ".join(str(address) for address in value) if isinstance(value, list) else str(value)
    if len(name) + 2 + len(text) <= SMTP_POLICY.max_line_length and text.isascii() and _PLAIN_HEADER.match(text):
        return "{0}: {1}\r\n".format(name, text).encode("ascii")
    header = SMTP_POLICY.header_factory(name, value if isinstance(value, list) else text)
    return SMTP_POLICY.fold_binary(name, header)


def _now():
    from datetime import datetime
    return datetime.now().astimezone()
