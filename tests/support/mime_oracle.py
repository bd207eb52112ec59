# -*- coding: utf-8 -*-
"""The content entity as the stock email package alone writes it (policy.SMTP, attachments encoded by
add_attachment): what compose.build_content must equal, byte for byte."""

import email.policy
import re
from email.message import MIMEPart

from fn_outbound_email.lib.message import compose

_BOUNDARY = re.compile(rb'boundary="([^"]+)"')


def boundaries_of(entity_bytes):
    """The multipart boundaries in order of appearance (the outermost first)."""
    return [match.decode("ascii") for match in _BOUNDARY.findall(entity_bytes)]


def text_encoding(text):
    """The rule compose follows: 7bit for ASCII with no line over 900 bytes, else quoted-printable."""
    lines = text.encode("utf-8").splitlines()
    return "7bit" if text.isascii() and all(len(line) <= 900 for line in lines) else "quoted-printable"


def email_package_entity_bytes(body, attachments=(), html=None, boundaries=()):
    """Build with set_content / make_alternative / add_alternative / make_mixed / add_attachment."""
    boundaries = list(boundaries)
    entity = MIMEPart(policy=email.policy.SMTP)
    if compose.looks_like_html(body) if html is None else html:
        plain = compose.html_to_text(body)
        entity.set_content(plain, subtype="plain", charset="utf-8", cte=text_encoding(plain))
        entity.make_alternative(boundary=boundaries.pop())          # the innermost boundary is the last
        entity.add_alternative(body, subtype="html", charset="utf-8", cte=text_encoding(body))
    else:
        entity.set_content(body, subtype="plain", charset="utf-8", cte=text_encoding(body))
    if attachments:
        entity.make_mixed(boundary=boundaries.pop())
        for attachment in attachments:
            maintype, subtype = attachment.mime_type
            entity.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                                  filename=compose.safe_attachment_name(attachment.name))
    return entity.as_bytes(policy=email.policy.SMTP)


def matches_email_package(body, attachments=(), html=None):
    """(ours, the email package's) for the same input and boundaries."""
    ours = compose.entity_bytes(compose.build_content(body, attachments, html=html))
    return ours, email_package_entity_bytes(body, attachments, html, boundaries_of(ours))
