# -*- coding: utf-8 -*-
"""Composing the MIME message with ``EmailMessage`` and ``email.policy.SMTP``.

A message is built in two layers: the *content entity* (body, alternatives,
attachments: everything S/MIME protects) and the *outer headers* (From, To,
Subject, ...). ``assemble`` puts the header lines in front of the entity bytes
so a signed entity reaches the wire byte for byte as it was signed.
"""

import base64
import io
import mimetypes
import ntpath
import posixpath
import re
import secrets
from dataclasses import dataclass, field
from email import policy
from email.message import MIMEPart
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser
from typing import List, Optional

from fn_outbound_email.lib.addresses import check_header_text

SMTP_POLICY = policy.SMTP
# X-Priority as mail clients read it: 1 highest, 3 normal, 5 lowest
X_PRIORITY = {"high": "1 (Highest)", "normal": "3 (Normal)", "low": "5 (Lowest)"}
_LINE_TAGS = frozenset(("tr", "li"))
_CELL_TAGS = frozenset(("td", "th"))
_BLOCK_TAGS = frozenset(("p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre",
                         "blockquote"))
_HIDDEN_TAGS = frozenset(("script", "style", "head", "title"))
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>")
# printable ASCII, single spaces, no edge spaces, no '=?' (an encoded word would be decoded and re-encoded)
_PLAIN_HEADER = re.compile(r"^(?!.*=\?)(?!.*  )[!-~](?:[ -~]*[!-~])?$")
_SPACES = re.compile(r"[ \t\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"^<?[^<>\s@]+@[^<>\s@]+>?$")


@dataclass
class Attachment:
    name: str
    content: bytes
    content_type: Optional[str] = None


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


def looks_like_html(body):
    """True when the text contains at least one HTML element (a start, end or empty tag)."""
    return bool(body) and "<" in body and _HTML_TAG.search(body) is not None


class _TextExtractor(HTMLParser):
    """One streaming pass over the HTML; building a document tree cost more than composing the mail."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pieces = []
        self._hidden_depth = 0       # inside script/style/head/title
        self._links = []             # (href, index of the first piece of the link's text)

    def _ends_with(self, characters):
        return bool(self.pieces) and self.pieces[-1][-1:] in characters

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        elif self._hidden_depth:
            return
        elif tag == "br":
            self.pieces.append("\n")
        elif tag == "hr":                  # a void block: its line break before and after at once
            self.pieces.append("\n\n")
        elif tag in _BLOCK_TAGS:
            self.pieces.append("\n")
        elif tag in _LINE_TAGS and not self._ends_with("\n"):    # an unclosed previous item still ends its line
            self.pieces.append("\n")
        elif tag in _CELL_TAGS and self.pieces and not self._ends_with(" \n"):
            self.pieces.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.pieces)))

    def handle_startendtag(self, tag, attrs):
        if tag == "br" or tag in _BLOCK_TAGS:
            self.handle_starttag(tag, attrs)
            if tag in _BLOCK_TAGS and not self._hidden_depth:
                self.pieces.append("\n")

    def handle_endtag(self, tag):
        if tag in _HIDDEN_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif self._hidden_depth:
            return
        elif tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self.pieces.append("\n")
        elif tag in _CELL_TAGS:
            self.pieces.append(" ")
        elif tag == "a" and self._links:
            href, first = self._links.pop()
            text = " ".join("".join(self.pieces[first:]).split())
            if href and href != text and not href.startswith("mailto:"):
                self.pieces.append(" <{0}>".format(href))

    def handle_data(self, data):
        if not self._hidden_depth:
            self.pieces.append(data)


def html_to_text(html):
    """A readable plain-text rendering of an HTML body for the text/plain alternative."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(extractor.pieces).splitlines())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


def safe_attachment_name(name):
    """The file name a recipient sees: last path component, no control characters.

    Attachment names come from SOAR users; they are only ever a MIME parameter,
    never a path, but a name like ``../x`` is still reduced so no mail client
    is tempted to treat it as one.
    """
    base = posixpath.basename(ntpath.basename(str(name or "")))
    base = _CONTROL_CHARS.sub("", base).strip().lstrip(".") or "attachment"
    return base


def _text_cte(text):
    """7bit when it is safe, else quoted-printable (S/MIME and old relays want 7-bit clean)."""
    if text.isascii() and all(len(line) <= 900 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def build_content(body, attachments=(), html=None):
    """The content entity: text, or text+HTML alternatives, plus attachments.

    ``html`` None detects HTML in the body; False sends it as plain text whatever it holds.
    """
    # MIMEPart rather than EmailMessage: no MIME-Version header on every sub-part
    entity = MIMEPart(policy=SMTP_POLICY)
    body = body or ""
    texts = [body]
    if looks_like_html(body) if html is None else html:
        plain = html_to_text(body)
        texts.append(plain)
        entity.set_content(plain, subtype="plain", charset="utf-8", cte=_text_cte(plain))
        entity.make_alternative(boundary=_new_boundary(texts))
        entity.add_alternative(body, subtype="html", charset="utf-8", cte=_text_cte(body))
    else:
        entity.set_content(body, subtype="plain", charset="utf-8", cte=_text_cte(body))
    if attachments:
        entity.make_mixed(boundary=_new_boundary(texts))
    bodies = {}
    for attachment in attachments:
        content_type = attachment.content_type or mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
        maintype, _, subtype = content_type.partition("/")
        # text attachments are sent as bytes too: their charset is unknown
        content = attachment.content
        spliced = isinstance(content, (bytes, bytearray))
        entity.add_attachment(b"" if spliced else content, maintype=maintype or "application",
                              subtype=subtype or "octet-stream", filename=safe_attachment_name(attachment.name))
        if spliced:
            # the email package would hold a big attachment several times over (base64 str, its lines, the
            # generator's copy); the part gets a placeholder line and the body is encoded straight into the output
            placeholder = "outbound-email-attachment-{0}".format(secrets.token_hex(16))
            entity.get_payload()[-1].set_payload(placeholder + "\n")
            bodies[placeholder.encode("ascii")] = content
    entity.attachment_bodies = bodies
    return entity


def _new_boundary(texts):
    """A multipart boundary chosen up front: the generator would otherwise compile a regex per message to
    find one. Base64 never contains '_', so only the text parts could hold it."""
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


def _entity_pieces(entity):
    """The entity as output pieces: its bytes from the email package, with the attachment bodies spliced in."""
    structure = entity.as_bytes(policy=SMTP_POLICY)
    pieces, position = [], 0
    for placeholder, content in getattr(entity, "attachment_bodies", {}).items():     # in order of appearance
        start = structure.index(placeholder + b"\r\n", position)
        pieces.extend([memoryview(structure)[position:start], _Base64Body(content)])
        position = start + len(placeholder) + 2
    pieces.append(memoryview(structure)[position:])
    return pieces


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
    return _join(_entity_pieces(entity))


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
    return _join([header_block] + _entity_pieces(content))


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
