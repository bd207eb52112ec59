# -*- coding: utf-8 -*-
"""HTML read as a flat stream of tokens: what turning it into plain text and cleaning it both need.

Mail bodies and incident rich text are read with one regular expression, the
way html.parser reads them. Neither consumer needs a document tree, and
building one (BeautifulSoup) cost more than composing the rest of the mail.
"""

import html
import re

TEXT, START, END = "text", "start", "end"

# a comment, a declaration or processing instruction, an end tag ('</ p>' is one, as html.parser reads it),
# an end tag of no element ('</>', '</1>': skipped), a start tag, or text
_TOKEN = re.compile(r"""
    <!--.*?(?:-->|\Z)
  | <[!?][^>]*>?
  | </\s*(?P<end_tag>[A-Za-z][^\t\n\f\r />]*)[^>]*>
  | </[^>]*>
  | <(?P<tag>[A-Za-z][^\t\n\f\r />]*)(?P<attrs>(?:[^>"']|"[^"]*"|'[^']*')*)>
  | (?P<text>[^<]+|<)
""", re.S | re.X)
# '<br/>', '<p />', '<img src="x"/>'; in '<a href=x/>' the slash belongs to the value
_SELF_CLOSING = re.compile(r"""(?:^|[\s"'])/$""")
_HREF = re.compile(r"""(?:^|\s)href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""", re.I)
# script and style hold raw text up to their end tag: a '<' in there starts no tag
_RAW_TEXT_END = {tag: re.compile(r"</{0}\s*>".format(tag), re.I) for tag in ("script", "style")}


def tokens(markup):
    """Yield ``(kind, value, attrs, self_closing)`` for ``markup``.

    * ``(TEXT, text, "", False)``: character data, entities decoded;
    * ``(START, tag, attrs, self_closing)``: a lower-case tag name and the attribute text as written;
    * ``(END, tag, "", False)``.

    Comments and declarations are skipped. script and style come as one self-closing start tag: the raw
    text they hold is never shown, so it is skipped with their end tag.
    """
    position, size = 0, len(markup)
    while position < size:
        token = _TOKEN.match(markup, position)
        position = token.end()
        text, tag, end_tag = token.group("text", "tag", "end_tag")
        if text is not None:
            yield TEXT, html.unescape(text), "", False
        elif end_tag is not None:
            yield END, end_tag.lower(), "", False
        elif tag is not None:
            tag = tag.lower()
            if tag in _RAW_TEXT_END:
                raw_end = _RAW_TEXT_END[tag].search(markup, position)
                position = raw_end.end() if raw_end else size
                yield START, tag, "", True
                continue
            attrs = token.group("attrs")
            yield START, tag, attrs, attrs.endswith("/") and _SELF_CLOSING.search(attrs) is not None


def href_of(attrs):
    """The href attribute's value (entities decoded) in a start tag's attribute text, or None."""
    match = _HREF.search(attrs)
    return html.unescape(next(value for value in match.groups() if value is not None)) if match else None
