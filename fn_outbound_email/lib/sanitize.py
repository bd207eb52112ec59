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
    open_tags = []              # allowed elements written and not yet closed, innermost last
    dropped = []                # dropped elements we are inside, innermost last
    for kind, value, attrs, self_closing in tokens(str(html)):
        if kind is TEXT:
            if not dropped:
                out.append(escape(value))
        elif value in DROPPED_WITH_CONTENT:
            if kind is START and not self_closing:
                dropped.append(value)
            elif kind is END:
                _close(dropped, value)
        elif dropped or value not in ALLOWED_TAGS:
            continue                # a tag not allowed is left out and its content kept
        elif kind is START:
            out.append(_start_tag(value, attrs))
            if value in VOID_TAGS:
                continue
            if self_closing:
                out.append("</{0}>".format(value))
            else:
                open_tags.append(value)
        else:
            # closing an outer element closes the ones still open inside it; an end tag of nothing open is dropped
            out.extend("</{0}>".format(tag) for tag in _close(open_tags, value))
    out.extend("</{0}>".format(tag) for tag in reversed(open_tags))
    return Markup("".join(out))


def _close(stack, tag):
    """Pop the innermost ``tag`` and everything opened after it; return them, innermost first."""
    if tag not in stack:
        return []
    position = len(stack) - 1 - stack[::-1].index(tag)
    closed = stack[position:]
    del stack[position:]
    return closed[::-1]


def _start_tag(tag, attrs):
    if tag == "a":
        href = (href_of(attrs) or "").strip()
        if href.lower().startswith(SAFE_LINK_SCHEMES):
            return '<a href="{0}">'.format(escape(href))
    return "<{0}>".format(tag)
