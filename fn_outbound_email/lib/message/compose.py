# -*- coding: utf-8 -*-
"""Composing the MIME message: exactly what ``EmailMessage`` with ``email.policy.SMTP`` writes.

A message is built in two layers: the *content entity* (body, alternatives,
attachments: everything S/MIME protects) and the *outer headers* (From, To,
Subject, ...). ``assemble`` puts the header lines in front of the entity bytes
so a signed entity reaches the wire byte for byte as it was signed.

Parts whose bytes have one fixed form (UTF-8 text parts, multipart framing,
short ASCII header lines) are written directly; everything that needs encoding
or folding (non-ASCII display names, long headers, RFC 2231 file names) is
written by the email package. tests/message/test_compose_bytes.py holds the output to
the email package's own, byte for byte.

Every header line, however written, passes ``verified_header_line`` before it
goes out: it must be exactly one header field.
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
from email import headerregistry, policy, quoprimime
from email.message import MIMEPart
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from typing import List, Optional

from fn_outbound_email.lib.message import html_tokens
from fn_outbound_email.lib.message.addresses import (ATEXT, CONTROL_CHARS, LONE_SURROGATES, check_header_text,
                                                     decoded_header_text, shown)
from fn_outbound_email.lib.message.html_tokens import END, TEXT, looks_like_html

SMTP_POLICY = policy.SMTP


def _outer_header_registry():
    registry = headerregistry.HeaderRegistry()
    # In-Reply-To and References carry one msg-id here, but the default registry reads them as unstructured
    # text and writes a long id as encoded words (threading breaks); Message-ID's class writes the id as it is
    for name in ("in-reply-to", "references"):
        registry.map_to_type(name, headerregistry.MessageIDHeader)
    return registry


# the outer headers (From, To, Subject, ...); the content entity's part headers use SMTP_POLICY
OUTER_POLICY = SMTP_POLICY.clone(header_factory=_outer_header_registry())
# a message that needs SMTPUTF8 (a non-ASCII local part) has RFC 6532 headers: UTF-8 as it is, as policy.SMTPUTF8
OUTER_POLICY_UTF8 = OUTER_POLICY.clone(utf8=True)
# RFC 5322 2.1.1: a line is at most 998 octets without its CRLF
MAX_LINE_OCTETS = 998
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
# RFC 5322 3.6.4 msg-id without the obsolete forms: dot-atom-text "@" (dot-atom-text / no-fold-literal)
_DOT_ATOM_TEXT = r"[{0}]+(?:\.[{0}]+)*".format(ATEXT)
_MESSAGE_ID = re.compile(r"<{0}@(?:{0}|\[[!-Z^-~]*\])>\Z".format(_DOT_ATOM_TEXT))
# what email.header.decode_header decodes as an RFC 2047 encoded word
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?.*?\?=")
# an id we send may come back as a reply's In-Reply-To: the longest header name it is written with
MAX_MESSAGE_ID = MAX_LINE_OCTETS - len("In-Reply-To: ")
# the function input each outer header comes from, for error messages
_INPUT_OF_HEADER = {"From": "mail_from", "To": "mail_to", "Cc": "mail_cc", "Subject": "mail_subject",
                    "Message-ID": "mail_message_id", "In-Reply-To": "mail_in_reply_to",
                    "References": "mail_in_reply_to"}


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


def _filename_read_back(head):
    """The file name a reader gets from an attachment part's header bytes (``head``, ending in its CRLF)."""
    return BytesParser(policy=policy.default).parsebytes(head + b"\r\n", headersonly=True).get_filename()


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
    ``policy.SMTP`` write (tests/message/test_compose_bytes.py compares them for a catalogue of bodies). The text
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
    filename = safe_attachment_name(attachment.name)
    part = MIMEPart(policy=SMTP_POLICY)
    part.set_content(b"", maintype=maintype, subtype=subtype, filename=filename)
    # the header lines as BytesGenerator writes them (fold_binary of each field), each checked, and the blank line;
    # the email package would hold a big attachment several times over (base64 str, its lines, the generator's
    # copy), so the body is encoded into the output
    source = "The {{0}} header of attachment {0}".format(shown(attachment.name))
    head = b"".join(verified_header_line(_folded(SMTP_POLICY, name, value, source.format(name)), source.format(name))
                    for name, value in part.raw_items())
    read_back = _filename_read_back(head)
    if read_back != filename:
        raise ValueError("Attachment {0} would reach its recipients named {1}, not {2} (its name still holds "
                         "encoded text a mail reader decodes); rename the attachment".format(
                             shown(attachment.name), shown(read_back), shown(filename)))
    return [head + b"\r\n", _Base64Body(content)]


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
    header_policy = OUTER_POLICY_UTF8 if headers.smtputf8 else OUTER_POLICY
    header_block = b"".join(header_line(name, value, header_policy) for name, value in fields)
    if isinstance(content, (bytes, bytearray)):
        content = memoryview(content)
        # an S/MIME entity brings its own MIME-Version line; the outer block already has one
        if bytes(content[:13]).lower() == b"mime-version:":
            content = content[bytes(content[:100]).index(b"\n") + 1:]
        return _join([header_block, content])
    return _join([header_block] + content.pieces)


def header_line(name, value, header_policy=OUTER_POLICY):
    """One header field as ``header_policy`` (policy.SMTP) writes it, CRLF included, checked by
    ``verified_header_line``; ``value`` is text or a list of Addresses.

    A short printable ASCII value is written as it is, which is exactly what the
    email package would write; anything else (non-ASCII display names, long
    values that need folding, encoded-word look-alikes) goes through the email
    package's header objects. Parsing every header there cost more than
    everything else in composing a message.
    """
    text = ", ".join(str(address) for address in value) if isinstance(value, list) else str(value)
    source = _header_source(name)
    if len(name) + 2 + len(text) <= header_policy.max_line_length and text.isascii() and _PLAIN_HEADER.match(text):
        line = "{0}: {1}\r\n".format(name, text).encode("ascii")
    else:
        line = _folded(header_policy, name, header_policy.header_factory(name, value if isinstance(value, list)
                                                                           else text), source)
        if isinstance(value, list) and _read_back(line, name, header_policy) != _addr_specs(value):
            line = _one_address_a_line(name, value, header_policy, source)
    return verified_header_line(line, source)


def _addr_specs(addresses):
    return [address.addr_spec for address in addresses]


def _read_back(line, name, header_policy):
    """The addresses a reader finds in a folded address header."""
    unfolded = line.decode("utf-8", "surrogateescape")[len(name) + 1:].replace("\r\n", "")
    try:
        return _addr_specs(header_policy.header_factory(name, unfolded).addresses)
    except Exception:           # as in _folded: what the parser cannot read is not what was meant
        return None


def _one_address_a_line(name, addresses, header_policy, source):
    """An address header with each address folded on its own, one a line.

    The email package's folder drops the quotes of a quoted display name it has to refold (CPython gh-80222,
    fixed in the 2025 security releases; 3.11.7 has it): ``"Doe, Jane" <jane@example.com>`` in a long To
    becomes two addresses, and a name like ``aaaa... <x@evil.example>, b`` one more. Only folded headers
    suffer from it (the short path writes each ``str(Address)``, the email package's own quoting), and an
    address folded alone is refolded only when it is itself too long, so it is folded alone; what still does
    not read back as the addresses given is refused.
    """
    bodies = []
    for address in addresses:
        folded = _folded(header_policy, name, header_policy.header_factory(name, [address]), source)
        body = folded[len(name) + 1:-2]
        bodies.append(body[1:] if body.startswith(b" ") else body)
    line = name.encode("ascii") + b": " + b",\r\n ".join(bodies) + b"\r\n"
    read_back = _read_back(line, name, header_policy)
    if read_back != _addr_specs(addresses):
        raise ValueError("{0} would not read back as the addresses given ({1} instead of {2}): this Python's email "
                         "package loses the quotes of a long display name (CPython gh-80222); shorten the display "
                         "name".format(source, read_back, _addr_specs(addresses)))
    return line


def _header_source(name):
    """How an error names an outer header: by the function input it comes from."""
    return "The {0} header".format(name) + (" ({0})".format(_INPUT_OF_HEADER[name]) if name in _INPUT_OF_HEADER
                                            else "")


def _folded(header_policy, name, header, source):
    """The email package's folding of ``header`` (a header object), as bytes."""
    try:
        return header_policy.fold_binary(name, header)
    except Exception as err:    # the folder fails on some inputs (3.11: UnicodeEncodeError, AttributeError)
        raise ValueError("{0} cannot be written as a mail header ({1}): {2}".format(source, err, shown(str(header))))


def verified_header_line(line, source):
    """``line`` (one folded header field, bytes) if it is exactly one header field; else ValueError.

    The check CPython's generator makes when ``policy.verify_generated_headers`` is on: no CR or LF followed
    by anything but a space or tab, and the field ends with its CRLF. It is done here because compose folds
    with ``policy.fold_binary``, which that check does not cover, and because the check only exists from
    CPython 3.13 and the 2024 security releases of older branches (3.11.7 has none). It is stricter in that a
    CR or LF outside a CRLF is refused even before a space, and so is a line longer than 998 octets (RFC 5322
    2.1.1).
    """
    lines = line.split(b"\r\n")
    if len(lines) < 2 or lines.pop() != b"":
        problem = "it does not end with CRLF"
    elif len(lines) > 1 and not lines[-1]:
        problem = "it ends with more than one CRLF, and a blank line ends the header block"
    elif any(b"\r" in text or b"\n" in text for text in lines):
        problem = "it holds a CR or LF that is not part of a CRLF"
    elif any(text[:1] not in (b" ", b"\t") for text in lines[1:]):
        problem = "a line break in it is not followed by a space or tab"
    elif any(len(text) > MAX_LINE_OCTETS for text in lines):
        problem = "a line of it is longer than {0} octets".format(MAX_LINE_OCTETS)
    else:
        return line
    raise ValueError("{0} would not be one header line ({1}), so the mail is not sent: {2}".format(
        source, problem, shown(line)))


def _now():
    from datetime import datetime
    return datetime.now().astimezone()
