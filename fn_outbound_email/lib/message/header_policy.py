# -*- coding: utf-8 -*-
"""The email policies a message is written with, and the checks on every header field they fold.

``BytesGenerator`` writes each header field with its policy's ``fold_binary``;
``CheckedPolicy`` (``policy.SMTP`` otherwise) checks the folded field right there,
so no header line the email package writes escapes the check, whatever the
input: it must be exactly one header field (``verified_header_line``: no CR or LF
but folding, at most 998 octets a line), and an address header must read back as
the addresses given. compose builds its messages with these policies.
"""

from email import headerregistry, policy

from fn_outbound_email.lib.message.addresses import shown

# RFC 5322 2.1.1: a line is at most 998 octets without its CRLF
MAX_LINE_OCTETS = 998
# the function input each outer header comes from, for error messages
_INPUT_OF_HEADER = {"From": "mail_from", "To": "mail_to", "Cc": "mail_cc", "Subject": "mail_subject",
                    "Message-ID": "mail_message_id", "In-Reply-To": "mail_in_reply_to",
                    "References": "mail_in_reply_to"}


class CheckedPolicy(policy.EmailPolicy):
    """``policy.SMTP`` whose header folding checks what it folds.

    ``BytesGenerator`` writes every header field with ``policy.fold_binary``, so
    checking there covers each line the email package writes, outer or part
    header. CPython's own check (``verify_generated_headers``) only exists from
    3.13 and the 2024 security releases (3.11.7 has none) and is weaker.
    """

    def fold_binary(self, name, value):
        source = _header_source(name, value)
        line = _folded(self, name, value, source)
        addresses = getattr(value, "addresses", None)
        # written as it reads (each address as str(Address) quotes it, on one line) it needs no reading back
        if addresses is not None and line != _unfolded_line(name, value) and \
                _read_back(line, name, self) != _addr_specs(addresses):
            line = _one_address_a_line(name, addresses, self, source)
        return verified_header_line(line, source)


class _HeaderClasses(headerregistry.HeaderRegistry):
    """The stock header registry, making each header class once.

    The stock ``__getitem__`` builds a new class with ``type()`` for every header it parses, which was a
    tenth of composing a message's time; the class it builds is the same every time.
    """

    def __init__(self):
        super().__init__()
        self._made = {}

    def map_to_type(self, name, cls):
        super().map_to_type(name, cls)
        self._made.pop(name.lower(), None)

    def __getitem__(self, name):
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made


def _outer_header_registry():
    registry = _HeaderClasses()
    # In-Reply-To and References carry one msg-id here, but the default registry reads them as unstructured
    # text and writes a long id as encoded words (threading breaks); Message-ID's class writes the id as it is
    for name in ("in-reply-to", "references"):
        registry.map_to_type(name, headerregistry.MessageIDHeader)
    return registry


# the content entity's part headers: policy.SMTP, checked
CONTENT_POLICY = CheckedPolicy(linesep="\r\n", header_factory=_HeaderClasses())
# the outer headers (From, To, Subject, ...)
OUTER_POLICY = CONTENT_POLICY.clone(header_factory=_outer_header_registry())
# a message that needs SMTPUTF8 (a non-ASCII local part) has RFC 6532 headers: UTF-8 as it is, as policy.SMTPUTF8
OUTER_POLICY_UTF8 = OUTER_POLICY.clone(utf8=True)


def header_line(name, value, header_policy=OUTER_POLICY):
    """One header field as ``header_policy`` writes it, CRLF included, checked; ``value`` is text or a list
    of Addresses. The same two steps as ``EmailMessage`` (store) and ``BytesGenerator`` (fold) take."""
    return header_policy.fold_binary(*header_policy.header_store_parse(name, value))


def _unfolded_line(name, header):
    return "{0}: {1}\r\n".format(name, header).encode("utf-8", "surrogateescape")


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
    becomes two addresses, and a name like ``aaaa... <x@evil.example>, b`` one more. An address folded
    alone is refolded only when it is itself too long, so it is folded alone; what still does not read
    back as the addresses given is refused.
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


def _header_source(name, header):
    """How an error names a header: an outer one by the function input it comes from, a part header by
    the attachment's file name."""
    filename = getattr(header, "params", {}).get("filename")
    if filename is not None:
        return "The {0} header of attachment {1}".format(name, shown(filename))
    return "The {0} header".format(name) + (" ({0})".format(_INPUT_OF_HEADER[name]) if name in _INPUT_OF_HEADER
                                            else "")


def _folded(header_policy, name, header, source):
    """The email package's own folding of ``header`` (a header object), as bytes, unchecked."""
    try:
        return policy.EmailPolicy.fold_binary(header_policy, name, header)
    except Exception as err:    # the folder fails on some inputs (3.11: UnicodeEncodeError, AttributeError)
        raise ValueError("{0} cannot be written as a mail header ({1}): {2}".format(source, err, shown(str(header))))


def verified_header_line(line, source):
    """``line`` (one folded header field, bytes) if it is exactly one header field; else ValueError.

    The check CPython's generator makes when ``policy.verify_generated_headers`` is on: no CR or LF followed
    by anything but a space or tab, and the field ends with its CRLF. It is stricter in that a CR or LF
    outside a CRLF is refused even before a space, and so is a line longer than 998 octets (RFC 5322 2.1.1).
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
