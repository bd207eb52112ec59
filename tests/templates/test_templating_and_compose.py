# -*- coding: utf-8 -*-
"""Unit tests of the pieces under the send path: templating, template_helper, composing."""

import email.policy
import threading

import pytest

from fn_outbound_email.lib.message import compose, header_policy, html_tokens
from fn_outbound_email.lib.message.addresses import parse_address, parse_address_list
from fn_outbound_email.lib.errors import TemplateError
from fn_outbound_email.lib.templates.sanitize import sanitize_html
from fn_outbound_email.lib.templates.helper import LazyList, TemplateHelper
from fn_outbound_email.lib.templates.render import TemplateRenderer


class FieldsOnlySoar:
    """Enough of SoarClient for template_helper value formatting."""

    def __init__(self, fields):
        self.fields = fields

    def get_field_definitions(self, type_name="incident"):
        return self.fields


# --- templating ---------------------------------------------------------------------------------------

def test_compiled_templates_are_cached_and_shared_across_threads():
    renderer = TemplateRenderer(cache_size=2)
    first = renderer.compile("Hello {{ name }}")
    assert renderer.compile("Hello {{ name }}") is first
    results = []
    threads = [threading.Thread(target=lambda: results.append(renderer.render("Hi {{ n }}", {"n": 1})))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["Hi 1"] * 8
    renderer.compile("a"), renderer.compile("b")
    assert renderer.compile("Hello {{ name }}") is not first      # evicted: the cache is bounded


def test_autoescape_follows_the_template_source():
    renderer = TemplateRenderer()
    text = renderer.render("Name: {{ v }}", {"v": "O'Neil & <Co>"})
    html = renderer.render("<p>{{ v }}</p>", {"v": "O'Neil & <Co>"})
    assert text == "Name: O'Neil & <Co>" and text.is_html is False
    assert html == "<p>O&#39;Neil &amp; &lt;Co&gt;</p>" and html.is_html is True


def test_do_extension_is_on():
    assert TemplateRenderer().render("{% set l = [] %}{% do l.append(3) %}{{ l }}", {}) == "[3]"


def test_template_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "notice.jinja"
    broken.write_text("one\ntwo\n{{ incident.name | nosuchfilter }}\n", encoding="utf-8")
    with pytest.raises(TemplateError) as raised:
        TemplateRenderer().render_file(str(broken), {"incident": {}})
    assert "notice.jinja" in str(raised.value) and "line 3" in str(raised.value)
    with pytest.raises(TemplateError) as raised:
        TemplateRenderer().render_file(str(tmp_path / "absent.jinja"), {})
    assert "absent.jinja" in str(raised.value)


def test_a_changed_template_file_is_read_again(tmp_path):
    template = tmp_path / "notice.jinja"
    template.write_text("first {{ n }}")
    renderer = TemplateRenderer()
    assert renderer.render_file(str(template), {"n": 1}) == "first 1"
    template.write_text("second, longer {{ n }}")
    assert renderer.render_file(str(template), {"n": 2}) == "second, longer 2"
    template.unlink()
    with pytest.raises(TemplateError) as raised:          # a removed file is an error, not the cached text
        renderer.render_file(str(template), {"n": 3})
    assert "notice.jinja" in str(raised.value)


def test_sanitize_html_keeps_formatting_and_drops_active_content():
    dirty = ('<p onclick="x()">Hi <b>there</b> <a href="javascript:alert(1)">bad</a> '
             '<a href="https://ok.example/">ok</a><script>alert(2)</script><img src=x onerror=y>'
             '<style>p{}</style></p>')
    clean = str(sanitize_html(dirty))
    assert clean == '<p>Hi <b>there</b> <a>bad</a> <a href="https://ok.example/">ok</a></p>'


# --- template_helper ----------------------------------------------------------------------------------

def test_values_are_formatted_by_field_type():
    fields = {"sev": {"input_type": "select", "values": [{"value": 4, "label": "Low"}]},
              "when": {"input_type": "datetimepicker"},
              "flag": {"input_type": "boolean"},
              "tags": {"input_type": "multiselect", "values": [{"value": 1, "label": "A"}, {"value": 2, "label": "B"}]},
              "body": {"input_type": "textarea", "prefix": "properties"}}
    helper = TemplateHelper(FieldsOnlySoar(fields), date_format="%d.%m.%Y")
    incident = {"sev": 4, "when": 86400000, "flag": False, "tags": [1, 2],
                "properties": {"body": {"format": "html", "content": "<p>x</p>"}}}
    assert helper.get_incident_value(incident, "sev") == "Low"
    assert helper.get_incident_value(incident, "when") == "02.01.1970"
    assert helper.get_incident_value(incident, "flag") == "No"
    assert helper.get_incident_value(incident, "tags") == "A, B"
    assert helper.get_incident_value(incident, "body") == "<p>x</p>"
    assert helper.get_incident_value(incident, "missing") is None
    assert helper.get_action_field_value({"properties": {"mail_to": "a@b.c"}}, "mail_to") == "a@b.c"
    assert helper.get_value_as_string({"input_type": "number"}, 7) == "7"


def test_notes_flatten_children_after_parents():
    helper = TemplateHelper(FieldsOnlySoar({}))
    notes = [{"text": "p1", "children": [{"text": {"content": "c1"}, "children": [{"text": "g1"}]}]},
             {"text": "p2", "children": []}]
    assert [n["text"] for n in helper.get_notes(notes)] == ["p1", "c1", "g1", "p2"]
    assert [n["text"] for n in helper.get_notes(notes, get_children=False)] == ["p1", "p2"]


def test_lazy_list_loads_once_and_only_when_used():
    loads = []
    lazy = LazyList(lambda: loads.append(1) or [1, 2])
    assert not lazy.loaded
    assert list(lazy) == [1, 2] and len(lazy) == 2 and lazy[0] == 1 and bool(lazy)
    assert loads == [1]


# --- composing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("../x", "x"), ("..\\..\\boot.ini", "boot.ini"), ("C:\\Users\\a\\evil.exe", "evil.exe"),
    ("/etc/passwd", "passwd"), ("..", "attachment"), ("", "attachment"), ("a\r\nb.txt", "ab.txt"),
    (".hidden", "hidden"), ("Prüfbericht ä.pdf", "Prüfbericht ä.pdf"),
])
def test_safe_attachment_name_keeps_only_the_last_path_component(name, expected):
    assert compose.safe_attachment_name(name) == expected


def test_html_to_text_keeps_structure_and_links():
    text = compose.html_to_text("<h1>Title</h1><p>One<br>Two</p><table><tr><td>a</td><td>b</td></tr></table>"
                                "<a href='https://x.example/'>link</a><script>no()</script>")
    assert text.splitlines()[0] == "Title"
    assert "One\nTwo" in text and "a | b" in text and "link <https://x.example/>" in text and "no()" not in text


@pytest.mark.parametrize("html, expected", [
    ("<ol><li>one<li>two</ol>", "one\ntwo\n"),                           # unclosed items still end their lines
    ("above<hr>below", "above\n\nbelow\n"),
    ("<head><title>T</title><style>p {}</style></head><p>x &amp; y</p>", "x & y\n"),
    ("<p>mail <a href='mailto:a@example.com'>a@example.com</a>, <a href='https://x/'>https://x/</a></p>",
     "mail a@example.com, https://x/\n"),                                # no link target repeated
    ("<table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>2</td></tr></table>", "k | v\n1 | 2\n"),
    ("<table><tr><td>Severity:</td><td>High</td></tr><tr><td>a</td><td></td><td>c</td></tr></table>",
     "Severity: High\na | | c\n"),                                        # a label cell is followed by a space
    ("<p>one</p>\n\n\n\n<p>two</p>", "one\n\ntwo\n"),
    ("<a href='https://a/'>a <a href='https://b/'>b</a>", "a <https://a/>b <https://b/>\n"),    # links do not nest
])
def test_html_to_text_cases(html, expected):
    assert compose.html_to_text(html) == expected


@pytest.mark.parametrize("markup, expected", [
    ("a &amp; b", [("text", "a & b", "", False)]),
    ("<P Class=x>", [("start", "p", " Class=x", False)]),
    ("<br/><br /><img src='x'/>", [("start", "br", "/", True), ("start", "br", " /", True),
                                   ("start", "img", " src='x'/", True)]),
    ("<a href=x/>", [("start", "a", " href=x/", False)]),               # the slash belongs to the value
    ("</ P >", [("end", "p", "", False)]),                              # as html.parser reads it
    ("</><!-- c --><!DOCTYPE html><?pi?></1>", []),
    ("<script>if (a<b) x()</script>y", [("start", "script", "", True), ("text", "y", "", False)]),
    ("<a title='x>y'>", [("start", "a", " title='x>y'", False)]),
    ("a < b", [("text", "a ", "", False), ("text", "<", "", False), ("text", " b", "", False)]),
    ("x<a href='y", [("text", "x", "", False)]),                       # a tag open at the end is dropped
    ("x<script>never closed", [("text", "x", "", False), ("start", "script", "", True)]),
])
def test_html_tokens(markup, expected):
    assert list(html_tokens.tokens(markup)) == expected


def test_href_of_decodes_entities_and_takes_any_quoting():
    assert html_tokens.href_of(" HREF='https://x/?a=1&amp;b=2'") == "https://x/?a=1&b=2"
    assert html_tokens.href_of(' title="x" href=https://y/') == "https://y/"
    assert html_tokens.href_of(' data-href="no"') is None


def test_looks_like_html_needs_an_element():
    assert compose.looks_like_html("<p>x</p>") and compose.looks_like_html("a<br/>b")
    assert not any(compose.looks_like_html(text) for text in ("a < b", "3 > 2", "plain", "", None, "<!-- c -->"))


def test_assembled_message_has_outer_headers_once_and_no_bcc():
    headers = compose.OuterHeaders(sender=parse_address("s@example.com", "mail_from"),
                                   to=parse_address_list("a@example.com", "mail_to"), subject="S",
                                   message_id="<1@example.com>", importance="low")
    message = compose.assemble(headers, compose.build_content("body"))
    head = message.split(b"\r\n\r\n")[0]
    assert head.count(b"MIME-Version: 1.0") == 1
    assert b"X-Priority: 5" in head and b"Importance: low" in head and b"Bcc" not in head
    assert b"\n" not in message.replace(b"\r\n", b"")          # CRLF line ends only


@pytest.mark.parametrize("value", ["a@b.com>", "<a@b.com", "a@b.com junk", "a..b@c.com", ".a@c.com",
                                   "a@-c.com", "a@c", "@c.com", "a@", "a@b@c.com", "\"unterminated <a@b.com>"])
def test_malformed_addresses_are_rejected_with_the_value(value):
    with pytest.raises(ValueError) as raised:
        parse_address_list(value, "mail_to")
    assert "mail_to" in str(raised.value)


def _email_package_header(name, value):
    from email.message import EmailMessage
    message = EmailMessage(policy=email.policy.SMTP)
    message[name] = value
    return message.as_bytes()[:-2]          # without the blank line that ends the header block


@pytest.mark.parametrize("name, value", [
    ("Subject", ""), ("Subject", "Incident 2095: phishing"), ("Subject", "two  spaces"), ("Subject", " edge "),
    ("Subject", "Störung: Zugriff verweigert"), ("Subject", "=?utf-8?q?looks_encoded?="),
    ("Subject", "a very long subject line " * 6), ("Subject", "x" * 120),
    ("From", [parse_address("SOAR Notifier <soar@example.com>", "f")]),
    ("From", [parse_address('"Doe, Jane" <jane@example.com>', "f")]),
    ("From", [parse_address("Jürgen Müller <jm@example.com>", "f")]),
    ("To", parse_address_list("a@example.com, B <b@example.com>; c@example.com", "t")),
    ("To", parse_address_list(", ".join("user{0}@example.com".format(n) for n in range(12)), "t")),
    ("Cc", parse_address_list("Ünïcode Name <u@bücher.example>", "t")),
    ("Message-ID", "<1234.5678@example.com>"), ("X-Priority", "1 (Highest)"),
    ("Date", "Sun, 29 Nov 2026 12:20:00 +0000"),
])
def test_header_lines_are_what_the_email_package_writes(name, value):
    assert header_policy.header_line(name, value) == _email_package_header(name, value)
