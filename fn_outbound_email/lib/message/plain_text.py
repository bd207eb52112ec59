# -*- coding: utf-8 -*-
"""The plain-text alternative of an HTML body: its text, with line breaks where blocks, rows and items end,
table cells kept apart and each link's address after its text.

Hand-written over the app's own linear tokenizer (html_tokens), which safe_html shares: the email package has
no HTML-to-text conversion, and a BeautifulSoup tree cost 0.2 ms per incident description (README Performance).
"""

import re

from fn_outbound_email.lib.message import html_tokens
from fn_outbound_email.lib.message.html_tokens import END, TEXT

_LINE_TAGS = frozenset(("tr", "li"))
_CELL_TAGS = frozenset(("td", "th"))
_BLOCK_TAGS = frozenset(("p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre",
                         "blockquote"))
_HIDDEN_TAGS = frozenset(("script", "style", "head", "title"))
_SPACES = re.compile(r"[ \t\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _cell_separator(pieces):
    """What goes before a table cell in the text: nothing at the start of a line, a space after a label cell
    ("Severity:" then its value), else " | ", so the columns of a data table stay apart."""
    line = []
    for piece in reversed(pieces):
        head, newline, tail = piece.rpartition("\n")
        line.append(tail)
        if newline:
            break
    text = "".join(reversed(line)).strip()
    if not text:
        return ""
    return " " if text.endswith(":") else " | "


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
        elif value in _CELL_TAGS:
            pieces.append(_cell_separator(pieces))
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
