# -*- coding: utf-8 -*-
"""An allow-list HTML cleaner for rich text that comes from incident data.

Incident descriptions and notes are HTML written by anyone who can edit an
incident (or by an inbound email). The ``safe_html`` template filter keeps
their formatting but drops scripts, styles, event handlers and non-web links,
so an incident cannot smuggle active content or javascript: links into mail.
"""

from bs4 import BeautifulSoup
from markupsafe import Markup

ALLOWED_TAGS = frozenset((
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li",
    "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
))
DROPPED_WITH_CONTENT = ("script", "style", "iframe", "object", "embed", "head", "title", "template")
SAFE_LINK_SCHEMES = ("http://", "https://", "mailto:")


def sanitize_html(html):
    """Markup holding only allowed tags, with href kept only on links to web or mail addresses."""
    if html is None:
        return Markup("")
    soup = BeautifulSoup(str(html), "html.parser")
    for tag in soup(DROPPED_WITH_CONTENT):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.name not in ALLOWED_TAGS:
            tag.unwrap()
            continue
        href = tag.attrs.get("href") if tag.name == "a" else None
        tag.attrs = {}
        if href and href.strip().lower().startswith(SAFE_LINK_SCHEMES):
            tag.attrs["href"] = href.strip()
    return Markup(str(soup))
