# -*- coding: utf-8 -*-
"""An allow-list HTML cleaner for rich text that comes from incident data.

Incident descriptions and notes are HTML written by anyone who can edit an
incident (or by an inbound email). The ``safe_html`` template filter keeps
their formatting but drops scripts, styles, event handlers and non-web links,
so an incident cannot smuggle active content or javascript: links into mail.

The output is written from scratch, never copied from the input: allowed tags
with no attribute but a checked href, text escaped, every element closed in
order. Whatever the input holds, nothing else can come out.
"""

import collections

from markupsafe import Markup, escape

from fn_outbound_email.lib.html_tokens import END, START, TEXT, href_of, tokens

ALLOWED_TAGS = frozenset((
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li",
    "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
))
VOID_TAGS = frozenset(("br", "hr"))
DROPPED_WITH_CONTENT = frozenset(("script", "style", "iframe", "object", "embed", "head", "title", "template"))
SAFE_LINK_SCHEMES = ("http://", "https://", "mailto:")


def sanitize_html(html):
    """Markup holding only allowed tags, with href kept only on links to web or mail addresses."""
    if html is None:
        return Markup("")
    out = []
    open_tags = _OpenElements()       # allowed elements written and not yet closed
    dropped = _OpenElements()         # dropped elements we are inside
    for kind, value, attrs, self_closing in tokens(str(html)):
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
            out.append(_start_tag(value, attrs))
            if value in VOID_TAGS:
                continue
            if self_closing:
                out.append("</{0}>".format(value))
            else:
                open_tags.push(value)
        else:
            # closing an outer element closes the ones still open inside it; an end tag of nothing open is dropped
            out.extend("</{0}>".format(tag) for tag in open_tags.close(value))
    out.extend("</{0}>".format(tag) for tag in open_tags.close_all())
    return Markup("".join(out))


class _OpenElements:
    """The names of the open elements, innermost last; whether a name is open is answered without a scan
    (rich text with thousands of nested or stray tags must not take quadratic time)."""

    def __init__(self):
        self._stack = []
        self._counts = collections.Counter()

    def __bool__(self):
        return bool(self._stack)

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
    if tag == "a":
        href = (href_of(attrs) or "").strip()
        if href.lower().startswith(SAFE_LINK_SCHEMES):
            return '<a href="{0}">'.format(escape(href))
    return "<{0}>".format(tag)
