# -*- coding: utf-8 -*-
"""Parsing and checking of everything that ends up in a mail header.

Addresses come from playbook authors and incident data, so each one is parsed
strictly and any control character (CR/LF header injection included) is refused
with an error that names the input and the offending value.
"""

import re
from email.headerregistry import Address
from email.utils import parseaddr

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# RFC 5322 atext plus dot, as SMTP servers accept it in an envelope local part
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_header_text(value, input_name):
    """Return ``value`` unchanged, or raise ValueError when it holds a control character."""
    if value is not None and CONTROL_CHARS.search(value):
        raise ValueError("{0} contains a line break or control character, which is not allowed in a mail "
                         "header: {1!r}".format(input_name, value))
    return value


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
    """IDN domains are allowed: they travel as their ASCII (punycode) form."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("{0}: '{1}' has an invalid domain".format(input_name, original))
    labels = ascii_domain.rstrip(".").split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError("{0}: '{1}' has an invalid domain".format(input_name, original))
    return ascii_domain.rstrip(".").lower()


def parse_address(text, input_name):
    """Parse one address (``user@example.com`` or ``Name <user@example.com>``) into an Address."""
    check_header_text(text, input_name)
    name, addr_spec = parseaddr(text, strict=True) if _PARSEADDR_HAS_STRICT else parseaddr(text)
    if not addr_spec or addr_spec.count("@") != 1:
        raise ValueError("{0}: '{1}' is not a valid email address".format(input_name, text))
    local, domain = addr_spec.split("@")
    if not local or not _LOCAL_PART.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("{0}: '{1}' is not a valid email address".format(input_name, text))
    # parseaddr is lenient about stray text; the re-joined form must account for all of it
    stripped = text.strip()
    if ("<" in stripped and not stripped.endswith(">")) or ("<" not in stripped and stripped != addr_spec):
        raise ValueError("{0}: '{1}' is not a valid email address".format(input_name, text))
    ascii_domain = _ascii_domain(domain, input_name, text)
    try:
        return Address(display_name=name, username=local, domain=ascii_domain)
    except (ValueError, IndexError) as err:
        raise ValueError("{0}: '{1}' is not a valid email address ({2})".format(input_name, text, err))


def parse_address_list(value, input_name):
    """Parse a comma or semicolon separated list of addresses; blanks are skipped."""
    if value is None:
        return []
    check_header_text(value, input_name)
    return [parse_address(part, input_name) for part in _split_list(str(value))]


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


def _parseaddr_has_strict():
    # Python 3.9.20+/3.11.10+ accept strict=; older patch releases do not
    try:
        parseaddr("a@b.c", strict=True)
        return True
    except TypeError:
        return False


_PARSEADDR_HAS_STRICT = _parseaddr_has_strict()
