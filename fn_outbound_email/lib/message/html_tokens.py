# -*- coding: utf-8 -*-
"""HTML read as a flat stream of tokens: what turning it into plain text and cleaning it both need.

Mail bodies and incident rich text are read with one regular expression, the
way html.parser reads them. Neither consumer needs a document tree, and
building one (BeautifulSoup) cost more than composing the rest of the mail.
"""

import html
import re

TEXT, START, END = "text", "start", "end"

# The kind of a token is the name of the last group it matched: a start tag ('attrs'), an end tag ('end_tag';
# '</ p>' is one, as html.parser reads it), script or style with the raw text they hold ('raw'), or text;
# comments, declarations, processing instructions and end tags of no element ('</>', '</1>') match no group.
# Every construct also ends at the end of the input: a pattern that could fail after scanning to the end
# would be tried again from each later '<', which made 30 KB of unclosed tags take seconds.
_TOKEN = re.compile(r"""
    <!--.*?(?:-->|\Z)
  | <[!?][^>]*>?
  | </\s*(?P<end_tag>[A-Za-z][^\t\n\f\r />]*)[^>]*>?
  | </[^>]*>?
  | <(?P<raw>script|style)(?=[\t\n\f\r />]|\Z)(?:[^>"']|"[^"]*"?|'[^']*'?)*>?.*?(?:</(?P=raw)\s*>|\Z)
  | <(?P<tag>[A-Za-z][^\t\n\f\r />]*)(?P<attrs>(?:[^>"']|"[^"]*"?|'[^']*'?)*)>?
  | (?P<text>[^<]+|<)
""", re.S | re.X | re.I)
# '<br/>', '<p />', '<img src="x"/>'; in '<a href=x/>' the slash belongs to the value
_SELF_CLOSING = re.compile(r"""(?:^|[\s"'])/$""")
# an element: a start, end or empty tag (a lone '<' or a comment makes no text HTML)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>")
_HREF = re.compile(r"""(?:^|\s)href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""", re.I)


def looks_like_html(text):
    """True when the text contains at least one HTML element (a start, end or empty tag)."""
    return bool(text) and "<" in text and _HTML_TAG.search(text) is not None


def tokens(markup):
    """Yield ``(kind, value, attrs, self_closing)`` for ``markup``.

    * ``(TEXT, text, "", False)``: character data, entities decoded;
    * ``(START, tag, attrs, self_closing)``: a lower-case tag name and the attribute text as written;
    * ``(END, tag, "", False)``.

    Comments and declarations are skipped. script and style come as one self-closing start tag: the raw
    text they hold is never shown, so it is skipped with their end tag.
    """
    for token in _TOKEN.finditer(markup):
        kind = token.lastgroup
        if kind == "text":
            text = token.group(kind)
            yield TEXT, html.unescape(text) if "&" in text else text, "", False
        elif kind == "attrs":
            if not token.group().endswith(">"):
                continue        # a tag still open at the end of the input is dropped, as browsers drop it
            attrs = token.group(kind)
            self_closing = attrs.endswith("/") and _SELF_CLOSING.search(attrs) is not None
            yield START, token.group("tag").lower(), attrs, self_closing
        elif kind == "end_tag":
            yield END, token.group(kind).lower(), "", False
        elif kind == "raw":
            yield START, token.group(kind).lower(), "", True


def href_of(attrs):
    """The href attribute's value (entities decoded) in a start tag's attribute text, or None."""
    match = _HREF.search(attrs)
    return html.unescape(next(value for value in match.groups() if value is not None)) if match else None
