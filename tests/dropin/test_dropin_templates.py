# -*- coding: utf-8 -*-
"""Drop-in: templates written for IBM's original app render the same values.

tests/data/templates/dropin_original_helpers.jinja calls every template_helper method and context name the
original's templates use; it is rendered through a real send_email2 (SOAR mock, aiosmtpd) and each value is
checked. An HTML template built the way the original's README examples are (row, artifact and note macros,
``| safe``, ``| striptags``, the incident link) goes through both functions.

Where our values differ from the original's on purpose, the expected value says so: select fields show
their label ("Active", not the code "A"), booleans show Yes/No.
"""

import logging
import os
import time
from datetime import datetime, timezone

import pytest
from pytest_resilient_circuits import resilient_endpoint

from fn_outbound_email.lib.templates.render import renderer as in_process_renderer
from tests.support.function_runner import app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, NOTES, SoarMock, _field, isolated_endpoints

SMTP_PORT = free_port()
TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "templates", "dropin_original_helpers.jinja")

config_data = app_config(SMTP_PORT, from_email_address="SOAR <soar@example.com>",
                         templates={"original_helpers": TEMPLATE})

SENT_MAIL_NOTE = {"id": 14, "parent_id": None, "children": [],
                  "text": "Email Sent if mail server is valid/authenticated<br>From: soar@example.com<br>Body: ..."}
TABLE_FIELDS = {
    "ioc": _field("ioc", "text", "Indicator", order=0),
    "kind": _field("kind", "select", "Kind", order=1,
                   values=[{"value": 901, "label": "Domain"}, {"value": 902, "label": "URL"}]),
}
TABLE_ROWS = [
    {"id": 1, "cells": {"ioc": {"value": "evil.example"}, "kind": {"value": "Domain"}}},
    {"id": 2, "cells": {"ioc": {"value": "good.example"}, "kind": {"value": "Domain"}}},
    {"id": 3, "cells": {"ioc": {"value": "evil.example"}, "kind": {"value": "URL"}}},
]
# incidents get_query_result finds: the mock's own incident (which the template excludes) and two others
QUERY_INCIDENTS = [
    {"id": INCIDENT_ID, "name": "this one", "severity_code": "Medium", "plan_status": "A"},
    {"id": 2400, "name": "Lost <laptop>", "severity_code": "High", "plan_status": "A"},
    {"id": 2399, "name": "Spam", "severity_code": "Low", "plan_status": "A"},
]
ACTION_FIELDS = {
    "notify_level": _field("notify_level", "select", "Notify level",
                           values=[{"value": 501, "label": "Low"}, {"value": 502, "label": "High"}]),
    "note_text": _field("note_text", "text", "Note"),
}


@isolated_endpoints
class DropinSoarMock(SoarMock):
    """The shared mock plus a data table with a repeated value, activity fields, and a note the original app's
    own post-processing script wrote."""

    @resilient_endpoint("POST", r"/incidents/[0-9]+/comments/query")
    def notes(self, request):
        return self._json(request, NOTES + [SENT_MAIL_NOTE])

    @resilient_endpoint("GET", r"/types/dropin_table\?handle_format=names$")
    def types_dropin_table(self, request):
        return self._json(request, {"type_name": "dropin_table", "fields": TABLE_FIELDS})

    @resilient_endpoint("GET", r"/incidents/[0-9]+/table_data/dropin_table")
    def dropin_table_rows(self, request):
        return self._json(request, {"id": 1002, "rows": TABLE_ROWS})

    @resilient_endpoint("GET", r"/types/actioninvocation\?handle_format=names$")
    def types_actioninvocation(self, request):
        return self._json(request, {"type_name": "actioninvocation", "fields": ACTION_FIELDS})

    # SOAR answers 404 for a data table (type) that does not exist
    @resilient_endpoint("GET", r"/types/no_such_table\?handle_format=names$")
    def types_no_such_table(self, request):
        return self._json(request, {"success": False, "message": "Type not found"}, status=404)

    @resilient_endpoint("GET", r"/incidents/[0-9]+/table_data/no_such_table")
    def no_such_table_rows(self, request):
        return self._json(request, {"success": False, "message": "Type not found"}, status=404)

    queries = []

    @resilient_endpoint("POST", r"/incidents/query_paged\?handle_format=names$")
    def query_paged(self, request):
        DropinSoarMock.queries.append(request.json())
        return self._json(request, {"recordsTotal": len(QUERY_INCIDENTS), "data": QUERY_INCIDENTS})


resilient_mock = DropinSoarMock


def rendered_lines(server):
    text = server.messages[0].message.get_content().replace("\r\n", "\n")
    return text, text.splitlines()


def values_of(lines, name):
    return [line.split("=", 1)[1] for line in lines if line.split("=", 1)[0] == name]


def value_of(lines, name):
    found = values_of(lines, name)
    assert len(found) == 1, "{0}: {1}".format(name, found)
    return found[0]


@pytest.fixture(scope="class")
def sent(circuits_app, smtp_server):
    """One send_email2 of the template; its rendered lines and the clock around it."""
    smtp_server.messages.clear()
    before = int(time.time())
    result = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com, Bob <bob@example.com>",
        "mail_cc": "carol@example.com; dave@example.com", "mail_bcc": "audit@example.com",
        "mail_subject": "Drop-in check", "mail_template_label": "original_helpers"})
    after = int(time.time())
    assert result["success"] is True, result["reason"]
    text, lines = rendered_lines(smtp_server)
    return {"result": result, "text": text, "lines": lines, "before": before, "after": after}


class TestEveryHelperRendersTheOriginalsValue:

    @pytest.mark.parametrize("name, expected", [
        ("incident.id", "2314"),
        ("incident.name", 'Phishing wave: "Invoice" & <script>'),
        ("incident.properties.custom_text", "Tom's \"quoted\" & <tagged> text"),
        ("field.severity_code", "Medium"),
        ("field.plan_status", "Active"),                     # the original shows the code, "A"
        ("field.create_date", "2022-08-05T14:03:23.441000"),
        ("field.incident_type_ids", "Phishing, Malware"),
        ("field.confirmed", "Yes"),                          # the original shows "True"
        ("field.custom_text", "Tom's \"quoted\" & text"),   # striptags, as the template asks
        ("field.custom_select", "Beta"),
        ("field.custom_multi", "Red, Green"),
        ("field.custom_number", "42"),
        ("field.custom_notes", "line one line two"),          # striptags folds the lines
        ("field.custom_date", "2022-08-05T00:00:00"),
        # rich text as plain text in a text template (the original gave the raw HTML, script and all)
        ("field.description", "Users got invoice mails from O'Brien & Co."),
        ("unknown_field", "None"),
        ("incident_url", "https://soar.example.invalid/#incidents/2314?orgId=201"),
        ("task_url", "https://soar.example.invalid/#incidents/2314?orgId=201&taskId=7001&tabName=details"),
        ("datatable_values", "evil.example, good.example"),  # each value once, as the original
        ("created", "2022-08-05T14:03:23.441000"),
        ("regex", "INC-#-A#"),
        ("list", "alice@example.com|bob@example.com|carol@example.com"),
        ("action_select", "High"),
        ("action_text", "call the CISO"),
        ("as_string_number", "7"),
        ("as_string_date", "1970-01-02T00:00:00"),
        ("as_string_multi", "A, B"),
        ("mail.mail_subject", "Drop-in check"),
        ("mail.mail_from", "SOAR <soar@example.com>"),
        ("mail.mail_to", "alice@example.com, Bob <bob@example.com>"),
        ("mail.mail_bcc.count", "1"),
        ("mail.mail_incident_id", str(INCIDENT_ID)),
        # the four methods the original had besides those
        ("field_defs.severity_code", "Severity"),
        ("datatable_value", "URL"),
        # a data table SOAR does not have renders '-', as in the original, instead of failing the mail
        ("missing_datatable", "-"),
        ("missing_datatable_values", "-"),
    ])
    def test_value(self, sent, name, expected):
        assert value_of(sent["lines"], name) == expected

    def test_unknown_fields_are_left_out_by_the_not_found_guard(self, sent):
        assert values_of(sent["lines"], "field.no_such_field") == []

    def test_artifacts(self, sent):
        assert values_of(sent["lines"], "artifact") == ["203.0.113.7|sender relay|IP Address",
                                                        "billing@evil.example|spoofed sender|Email Sender"]

    def test_notes_with_and_without_children_leave_out_the_originals_sent_mail_notes(self, sent):
        assert values_of(sent["lines"], "note") == ["Parent note", "Child note", "Second note"]
        assert values_of(sent["lines"], "top_note") == ["Parent note", "Second note"]
        assert "Email Sent if mail server" not in sent["text"]

    def test_notes_helper_appends_every_descendant(self, sent):
        assert values_of(sent["lines"], "descendant") == ["Child note"]

    def test_get_query_result_is_a_table_of_the_matching_incidents_without_the_excluded(self, sent):
        table = value_of(sent["lines"], "query_result")
        assert table == ('<table border="1"><tr><th>Name</th><th>Severity</th></tr>'
                         '<tr><td>Lost &lt;laptop&gt;</td><td>High</td></tr><tr><td>Spam</td><td>Low</td></tr></table>')
        query = DropinSoarMock.queries[-1]
        assert query["filters"] == [{"conditions": [{"field_name": "plan_status", "method": "equals", "value": "A"}]}]
        assert query["sorts"] == [{"field_name": "create_date", "type": "desc"}]

    def test_datatable_html(self, sent):
        table = value_of(sent["lines"], "datatable")
        assert table.startswith("<table") and table.endswith("</table>")
        assert "<th>Indicator</th><th>Kind</th>" in table
        assert "<tr><td>evil.example</td><td>Domain</td></tr>" in table
        assert table.count("<tr>") == 1 + len(TABLE_ROWS)

    def test_get_timestamp_is_epoch_seconds_and_offset_in_seconds(self, sent):
        now, hour_ago = int(value_of(sent["lines"], "now")), int(value_of(sent["lines"], "hour_ago"))
        assert sent["before"] <= now <= sent["after"] + 1
        assert 3599 <= now - hour_ago <= 3600        # read a moment apart, each rounded to a second

    def test_mail_address_lists(self, sent):
        assert values_of(sent["lines"], "mail.mail_cc") == ["carol@example.com", "dave@example.com"]

    def test_the_result_holds_the_rendered_text(self, sent):
        assert sent["result"]["content"]["mail_body"].startswith("incident.id=2314\n")
        assert sent["result"]["content"]["mail_body"].rstrip("\n") == sent["text"].rstrip("\n")


# An HTML template written the way the original's README examples are: a row macro guarded by a NOT_FOUND
# list, artifact and note macros over template_helper, `| safe` and `| striptags`, and the incident link.
ORIGINAL_STYLE_HTML = """{% set NOT_FOUND = ["Not Found!","-","None",None] %}
{% set style = "font-family: Calibri" %}
{% macro get_row(label, field_name) -%}
    {% set value = template_helper.get_incident_value(incident, field_name) -%}
    {% if value and value not in NOT_FOUND and not value.startswith('-') -%}
    <tr><td style="{{style}}">{{ label }}</td><td style="{{style}}">{{ value | safe }}</td></tr>
    {% endif -%}
{% endmacro -%}
{% macro get_artifact(art) -%}
    {% for a in template_helper.get_artifacts(art) -%}
    <tr><td>{{ a.get("value") | safe }}</td><td>{{ a.get("description") if a.get("description") else '-' }}</td></tr>
    {% endfor -%}
{%- endmacro -%}
{% macro get_note(note, get_children=True) -%}
    {% for n in template_helper.get_notes(note, get_children) -%}
    {% if n.get("text", "") %}<tr><td colspan="2">{{ n.get("text", "") | safe }}</td></tr>{% endif %}
    {% endfor -%}
{% endmacro -%}
<table width="100%">
{{ get_row('Severity:', 'severity_code') }}
{{ get_row('Created:', 'create_date') }}
{{ get_row('Category:', 'incident_type_ids') }}
{{ get_row('Owner:', 'no_such_field') }}
{{ get_artifact(artifact) }}
{{ get_note(note, get_children=True) }}
<tr><td colspan="2">{% set inc_url = template_helper.generate_incident_url(incident.id) %}
<a target='_blank' href='{{ inc_url }}'>{{ incident.id }}: {{ incident.name | striptags }}</a></td></tr>
</table>
"""


@pytest.mark.parametrize("function_name, inputs", [
    ("send_email", {"mail_subject": "[2314] html", "mail_body_html": ORIGINAL_STYLE_HTML}),
    ("send_email2", {"mail_subject": "[2314] html", "mail_inline_template": ORIGINAL_STYLE_HTML}),
])
def test_original_style_html_template(circuits_app, server, function_name, inputs):
    result = call_function(circuits_app, function_name, dict(inputs, mail_incident_id=INCIDENT_ID,
                                                             mail_to="alice@example.com"))
    assert result["success"] is True, result["reason"]
    html = server.messages[0].message.get_body(preferencelist=("html",)).get_content()
    assert '<td style="font-family: Calibri">Severity:</td><td style="font-family: Calibri">Medium</td>' in html
    assert ">2022-08-05T14:03:23.441000</td>" in html and ">Phishing, Malware</td>" in html
    assert "Owner:" not in html
    assert "<td>203.0.113.7</td><td>sender relay</td>" in html
    assert "<td>billing@evil.example</td><td>spoofed sender</td>" in html
    for note_text in ("<p>Parent note</p>", "Child note", "Second note"):
        assert note_text in html
    assert "Email Sent if mail server" not in html
    assert "href='https://soar.example.invalid/#incidents/2314?orgId=201'" in html
    # incident values stay escaped in HTML mail unless the template marks them safe
    assert ">2314: Phishing wave: &#34;Invoice&#34; &amp;</a>" in html


def test_format_timestamp_writes_utc_as_the_original_on_app_host():
    # the original formats in the host's local time, which on App Host is UTC; ours is UTC everywhere
    from fn_outbound_email.lib.templates.helper import TemplateHelper
    moment = datetime(2024, 2, 29, 23, 59, 58, 125000, tzinfo=timezone.utc)
    helper = TemplateHelper(soar=None)
    assert helper.format_timestamp(int(moment.timestamp() * 1000)) == "2024-02-29T23:59:58.125000"
    assert TemplateHelper(None, "%d.%m.%Y %H:%M %z").format_timestamp(int(moment.timestamp() * 1000)) == \
        "29.02.2024 23:59 +0000"


def test_a_missing_data_table_renders_a_dash_with_a_template_warning(circuits_app, server, caplog):
    caplog.set_level(logging.WARNING, logger="fn_outbound_email.lib.templates.check")
    template = ("<p>Table: {{ template_helper.get_datatable('no_such_table', incident.id) }}</p>\n"
                "<p>Values: {{ template_helper.get_datatable_value_array(incident.id, 'no_such_table', 'ioc') }}"
                "</p>\n<p>Fields: {{ template_helper.get_field_defs('no_such_table') | length }}</p>")
    result = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com", "mail_subject": "missing table",
        "mail_inline_template": template})
    assert result["success"] is True, result["reason"]
    html = server.messages[0].message.get_body(preferencelist=("html",)).get_content()
    assert "<p>Table: -</p>" in html and "<p>Values: -</p>" in html and "<p>Fields: 0</p>" in html
    logged = [record.getMessage() for record in caplog.records]
    assert "Template 'mail_inline_template' line 1: SOAR has no data table 'no_such_table' (rendered as '-')" in logged
    assert "Template 'mail_inline_template' line 2: SOAR has no data table 'no_such_table' (rendered as '-')" in logged
    assert "Template 'mail_inline_template' line 3: SOAR has no type 'no_such_table' (get_field_defs gave no fields)" \
        in logged


@pytest.mark.parametrize("call, expected", [
    ("get_query_result('plan_status', ['name'], [])", "query_conditions must be a list of conditions"),
    ("get_query_result([{'field': 'plan_status'}], ['name'], [])", "each condition needs field_name and method"),
    ("get_query_result([{'field_name': 'plan_status', 'method': 'equals', 'value': 'A'}], [1], [])",
     "want_fields_list must be a list of incident field names"),
])
def test_get_query_result_with_wrong_arguments_fails_the_send_with_a_clear_reason(circuits_app, server, call,
                                                                                   expected):
    result = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com",
        "mail_inline_template": "{{ template_helper." + call + " }}"})
    assert result["success"] is False and expected in result["reason"], result["reason"]
    assert server.messages == []


def test_get_query_result_says_when_it_shows_fewer_incidents_than_match(circuits_app, server, caplog, monkeypatch):
    monkeypatch.setattr("fn_outbound_email.lib.templates.helper.QUERY_MAX_ROWS", 1)
    # the limit is patched in this process: the template renders in it, not in a render worker process
    monkeypatch.setattr("fn_outbound_email.lib.mailer.default_renderer", in_process_renderer)
    caplog.set_level(logging.WARNING, logger="fn_outbound_email.lib.templates.check")
    result = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com",
        "mail_inline_template": "<div>{{ template_helper.get_query_result([{'field_name': 'plan_status', "
                                "'method': 'equals', 'value': 'A'}], ['name'], [incident.id]) }}</div>"})
    assert result["success"] is True, result["reason"]
    html = server.messages[0].message.get_body(preferencelist=("html",)).get_content()
    assert "<td>Lost &lt;laptop&gt;</td>" in html and "<td>Spam</td>" not in html
    assert DropinSoarMock.queries[-1]["length"] == 2          # one to show, plus the one excluded
    assert "Template 'mail_inline_template' line 1: get_query_result shows the newest 1 incidents; 3 match the " \
           "conditions" in [record.getMessage() for record in caplog.records]
