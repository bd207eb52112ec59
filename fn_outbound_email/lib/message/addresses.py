# -*- coding: utf-8 -*-
"""Parsing and checking of everything that ends up in a mail header.

Addresses come from playbook authors and incident data, so each one is parsed
strictly and any control character (CR/LF header injection included) is refused
with an error that names the input and the offending value, whether it is
written raw or hidden in an RFC 2047 encoded word (``=?utf-8?q?=0D=0A?=``),
which the email package decodes before it writes the header.
"""

import functools
import re
import unicodedata
from email import errors, policy
from email.header import decode_header
from email.headerregistry import Address

import idna

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators (str.splitlines breaks lines there)
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
LONE_SURROGATES = re.compile("[\ud800-\udfff]")
# RFC 5322 atext, as SMTP servers accept it in an envelope local part
ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_ASCII_LOCAL_PART = re.compile(r"[{0}]+(?:\.[{0}]+)*\Z".format(ATEXT))
# RFC 6531 3.3: atext also takes any non-ASCII character (UTF8-non-ascii); which ones are printable is checked
# with unicodedata below
_UTF8_LOCAL_PART = re.compile(r"[\u0080-\U0010ffff{0}]+(?:\.[\u0080-\U0010ffff{0}]+)*\Z".format(ATEXT))
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MAX_DOMAIN_LENGTH = 253
# the headers parse addresses as the email package will write them: defects are how it reports stray text
_HEADERS = policy.SMTP.header_factory
# unquoted dots in a display name ("John Q. Public", "Smith Jr.") are obsolete syntax, but common; the parser
# reports a final one twice; the name is written quoted
_TOLERATED_DEFECTS = ("period in 'phrase'", "comment found without atom")
# decoding nests (an encoded word may decode to another one); a few rounds cover any honest value
_DECODE_ROUNDS = 4


def shown(value, limit=120):
    """``value`` for an error message: repr, shortened when it is long."""
    text = repr(value)
    return text if len(text) <= limit else "{0}... ({1} characters)".format(text[:limit], len(value))


def check_header_text(value, input_name):
    """Return ``value`` unchanged, or raise ValueError when it holds a control character or a lone surrogate,
    written as it is or inside an RFC 2047 encoded word."""
    if value is None:
        return value
    if CONTROL_CHARS.search(value):
        raise ValueError("{0} contains a line break or control character, which is not allowed in a mail "
                         "header: {1}".format(input_name, shown(value)))
    if LONE_SURROGATES.search(value):
        raise ValueError("{0} contains a lone surrogate (U+D800..U+DFFF), which is not text and cannot be encoded: "
                         "{1}".format(input_name, shown(value)))
    pending = [value]
    for _ in range(_DECODE_ROUNDS):
        pending = [decoded for text in pending if "=?" in text for decoded in _decoded_forms(text, input_name)]
        if any(CONTROL_CHARS.search(text) for text in pending):
            raise ValueError("{0} holds an RFC 2047 encoded word that decodes to a line break or control character, "
                             "which is not allowed in a mail header: {1}".format(input_name, shown(value)))
    return value


def decoded_header_text(value, input_name):
    """``value`` as a reader shows it: its RFC 2047 encoded words decoded (nested ones too), by the header
    registry's parser, the one a recipient's Python reads a file name parameter with."""
    text = value
    for _ in range(_DECODE_ROUNDS):
        if "=?" not in text:
            break
        decoded = _decoded_forms(text, input_name)[0]
        if decoded == text:
            break
        text = decoded
    return text


def _decoded_forms(text, input_name):
    """``text`` as readers decode its RFC 2047 encoded words: the header registry's parser (the one that
    writes our headers) and email.header.decode_header each decode words the other leaves alone, so both are
    asked (and the caller asks again while a result still holds ``=?``: a word may decode to another)."""
    try:
        header = _HEADERS("subject", text)
    except Exception:       # the parser fails on some malformed text; what it cannot read, it cannot write either
        raise ValueError("{0} cannot be read as mail header text: {1}".format(input_name, shown(text)))
    return [str(header), _decode_header_text(text, input_name)]


def _decode_header_text(text, input_name):
    try:
        parts = decode_header(text)
    except errors.HeaderParseError:            # a broken word is left alone by the registry's parser too
        return text
    try:
        # decode_header hands back bytes: the words undecoded, the text between them as raw-unicode-escape; RFC
        # 2231 lets a charset name a language (utf-8*en)
        return "".join(part if isinstance(part, str) else part.decode(charset.split("*")[0]) if charset else
                       part.decode("raw-unicode-escape") for part, charset in parts)
    except (LookupError, UnicodeDecodeError):
        # the registry's parser keeps such a word as raw bytes, which its folder then fails to write (3.11)
        raise ValueError("{0} holds an RFC 2047 encoded word in an unknown charset, or with bytes that are not text "
                         "in its charset: {1}".format(input_name, shown(text)))


def _split_list(value):
    """Split on commas and semicolons that are not inside quotes or angle brackets."""
    parts, current, quoted, angle = [], [], False, 0
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            angle += 1
        elif char == ">" and not quoted and angle:
            angle -= 1
        elif char in ",;" and not quoted and not angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _ascii_domain(domain, input_name, original):
    """The domain as it travels: ASCII, IDN labels as A-labels (IDNA 2008 with the UTS 46 mapping).

    The mapping may only fold case and compose characters (NFC); any other change (IDNA 2003's ß -> ss, a
    dropped zero-width character, full-width letters) means the mail would go to a domain the input does not
    show, so the address is refused.
    """
    try:
        if domain.isascii():
            ascii_domain = domain.lower()
            if "xn--" in ascii_domain:
                idna.decode(ascii_domain)            # an A-label must be valid punycode of a valid U-label
        else:
            mapped = idna.uts46_remap(domain, std3_rules=True, transitional=False)
            if mapped != unicodedata.normalize("NFC", domain.lower()):
                raise ValueError("{0}: '{1}' has a domain that IDNA 2008 (UTS 46) maps to '{2}', a different "
                                 "domain than written; give the domain as it is meant".format(
                                     input_name, original, mapped))
            ascii_domain = idna.encode(mapped).decode("ascii")
    except idna.IDNAError as err:
        raise ValueError("{0}: '{1}' has an invalid domain ({2})".format(input_name, original, err))
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > MAX_DOMAIN_LENGTH or \
            not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError("{0}: '{1}' has an invalid domain".format(input_name, original))
    return ascii_domain


def _valid_local_part(local):
    """Dot-atom text (RFC 5322), non-ASCII allowed as RFC 6531 allows it, but only printable, visible
    characters (no format, private-use, unassigned or space characters) and no RFC 2047 encoded word, which
    must never appear in an addr-spec (RFC 2047 5)."""
    if "=?" in local:
        return False
    if local.isascii():
        return bool(_ASCII_LOCAL_PART.match(local))
    return bool(_UTF8_LOCAL_PART.match(local)) and not any(
        unicodedata.category(char)[0] in "CZ" for char in local if not char.isascii())


# the same few senders and recipients come again and again; an Address is immutable, and the email package's
# parser costs more than composing the rest of the headers
@functools.lru_cache(maxsize=1024)
def parse_address(text, input_name):
    """Parse one address (``user@example.com`` or ``Name <user@example.com>``) into an Address.

    The email package's address parser reads it, exactly as it will read the header we write; any defect it
    reports (text after the address, a second address, an unbalanced quote...) refuses the address.
    """
    check_header_text(text, input_name)
    invalid = "{0}: '{1}' is not a valid email address".format(input_name, text)
    try:
        header = _HEADERS("to", text)
    except Exception:       # besides ValueError, the parser fails with AttributeError on '. <a@b.c>' (3.11)
        raise ValueError(invalid)
    defects = [defect for defect in header.defects if not isinstance(defect, errors.NonASCIILocalPartDefect) and
               str(defect) not in _TOLERATED_DEFECTS]
    if defects:
        raise ValueError("{0} ({1})".format(invalid, defects[0]))
    if len(header.groups) != 1 or header.groups[0].display_name is not None or len(header.addresses) != 1:
        raise ValueError(invalid)
    parsed = header.addresses[0]
    if not parsed.domain or not _valid_local_part(parsed.username):
        raise ValueError(invalid)
    ascii_domain = _ascii_domain(parsed.domain, input_name, text)
    try:
        return Address(display_name=parsed.display_name, username=parsed.username, domain=ascii_domain)
    except (ValueError, IndexError) as err:
        raise ValueError("{0} ({1})".format(invalid, err))


def parse_address_list(value, input_name):
    """Parse a comma or semicolon separated list of addresses; blanks are skipped."""
    if value is None:
        return []
    check_header_text(value, input_name)
    return [parse_address(part, input_name) for part in _split_list(str(value))]


def needs_smtputf8(*address_lists):
    """True when an address has a non-ASCII local part: only SMTPUTF8 (RFC 6531) can carry it."""
    return any(not address.username.isascii() for addresses in address_lists for address in addresses)


def unique_envelope_recipients(*address_lists):
    """Every recipient once, in order, compared case-insensitively."""
    seen, result = set(), []
    for addresses in address_lists:
        for address in addresses:
            key = address.addr_spec.lower()
            if key not in seen:
                seen.add(key)
                result.append(address.addr_spec)
    return result
