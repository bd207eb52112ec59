# -*- coding: utf-8 -*-
"""An allow-list HTML cleaner for rich text that comes from incident data.

Incident descriptions and notes are HTML written by anyone who can edit an
incident (or by an inbound email). The ``safe_html`` template filter keeps
their formatting but drops scripts, styles, event handlers and non-web links,
so an incident cannot smuggle active content or javascript: links into mail.

The cleaning is nh3's (Python's binding of Rust's maintained ammonia
sanitizer, which parses HTML as browsers do with html5ever): only the allowed
tags, no attribute but an ``href`` whose scheme is http, https or mailto
(relative links dropped), comments dropped, the output written afresh.

One thing nh3 does not give is linear time: html5ever walks its whole stack
of open elements for every end tag that matches nothing, so 50,000 open
``<b>`` and as many stray ``</i>`` took 14 s (85 s for twice that). So the
markup first passes our own linear tokenizer (lib/message/html_tokens.py), which
keeps only allowed tags, drops end tags of nothing open, closes every
element in order and nests at most MAX_DEPTH deep; nh3 then only ever reads
shallow, balanced markup.
"""

import collections
import re

import nh3
from markupsafe import Markup, escape

from fn_outbound_email.lib.message.html_tokens import END, START, TEXT, href_of, tokens

ALLOWED_TAGS = frozenset((
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li",
    "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
))
VOID_TAGS = frozenset(("br", "hr"))
DROPPED_WITH_CONTENT = frozenset(("script", "style", "iframe", "object", "embed", "head", "title", "template"))
LINK_SCHEMES = frozenset(("http", "https", "mailto"))
# deeper nesting is flattened (the content stays); rich text from SOAR's editor nests a handful of levels
MAX_DEPTH = 100

_CLEANER = nh3.Cleaner(tags=set(ALLOWED_TAGS), clean_content_tags=set(DROPPED_WITH_CONTENT),
                       attributes={"a": {"href"}}, url_schemes=set(LINK_SCHEMES), url_relative="deny",
                       link_rel=None, strip_comments=True)
# nh3's output: a tag (quoted attribute values may hold '>') or a run of text, which never holds '<'
_TAG_OR_TEXT = re.compile(r'(<[^>"]*(?:"[^"]*"[^>"]*)*>)|([^<]+)')


def sanitize_html(html):
    """Markup holding only allowed tags, with href kept only on links to web or mail addresses.

    Takes HTML text, or SOAR's rich-text value ``{"format": "html" | "text", "content": ...}``.
    """
    if isinstance(html, dict):
        content = html.get("content")
        if html.get("format") == "text":           # plain text shows as it is, markup characters included
            return Markup(escape(content if content is not None else ""))
        html = content
    if html is None:
        return Markup("")
    clean = _CLEANER.clean(_shallow_balanced(str(html)))
    # text keeps its quotes escaped too, as markupsafe writes them, so the output is also safe in an attribute
    return Markup(_TAG_OR_TEXT.sub(_escape_quotes_in_text, clean))


def _escape_quotes_in_text(match):
    text = match.group(2)
    if text is None:
        return match.group(1)
    return text.replace('"', "&#34;").replace("'", "&#39;")


def _shallow_balanced(html):
    """The allowed elements of ``html``, balanced and at most MAX_DEPTH deep, text escaped (in linear time)."""
    out = []
    open_tags = _OpenElements()       # allowed elements written and not yet closed
    dropped = _OpenElements()         # dropped elements we are inside
    for kind, value, attrs, self_closing in tokens(html):
        if kind is TEXT:
            if not dropped:
                out.append(escape(value))
        elif value in DROPPED_WITH_CONTENT:
            if kind is START and not self_closing:
                dropped.push(value)
            elif kind is END:
                dropped.close(value)
        elif dropped or value not in ALLOWED_TAGS:
            continue                # a tag not allowed is left out and its content kept
        elif kind is START:
            if value in VOID_TAGS:
                out.append("<{0}>".format(value))
            elif len(open_tags) < MAX_DEPTH:
                out.append(_start_tag(value, attrs))
                if self_closing:
                    out.append("</{0}>".format(value))
                else:
                    open_tags.push(value)
        else:
            # closing an outer element closes the ones still open inside it; an end tag of nothing open is dropped
            out.extend("</{0}>".format(tag) for tag in open_tags.close(value))
    out.extend("</{0}>".format(tag) for tag in open_tags.close_all())
    return "".join(out)


class _OpenElements:
    """The names of the open elements, innermost last; whether a name is open is answered without a scan
    (rich text with thousands of nested or stray tags must not take quadratic time)."""

    def __init__(self):
        self._stack = []
        self._counts = collections.Counter()

    def __bool__(self):
        return bool(self._stack)

    def __len__(self):
        return len(self._stack)

    def push(self, tag):
        self._stack.append(tag)
        self._counts[tag] += 1

    def close(self, tag):
        """Pop the innermost ``tag`` and everything opened after it; return them, innermost first."""
        if not self._counts[tag]:
            return []
        closed = []
        while True:
            inner = self._stack.pop()
            self._counts[inner] -= 1
            closed.append(inner)
            if inner == tag:
                return closed

    def close_all(self):
        closed, self._stack = self._stack[::-1], []
        self._counts.clear()
        return closed


def _start_tag(tag, attrs):
    """A start tag as written for nh3: a link keeps its href (nh3 decides whether its scheme may stay)."""
    if tag == "a":
        href = href_of(attrs)
        if href is not None:
            return '<a href="{0}">'.format(escape(href.strip()))
    return "<{0}>".format(tag)
