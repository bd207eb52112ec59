# -*- coding: utf-8 -*-
"""The shipped SOAR customizations: export.res is current, consistent, and its scripts do what they should.

The scripts are run the way SOAR runs them (their text from export.res, exec'd with `inputs`, `playbook`,
`incident`, `task`, `row`), against small stand-ins for those SOAR objects.
"""

import base64
import json
import re
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points

import pytest

from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.templates.helper import TemplateHelper
from fn_outbound_email.lib.templates.render import TemplateRenderer
from fn_outbound_email.util import customize
from fn_outbound_email.util.customizations import build, soar_objects

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
RESILIENT = "{http://resilient.ibm.com/bpmn}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"

SEND_EMAIL_INPUTS = ["mail_from", "mail_incident_id", "mail_to", "mail_cc", "mail_bcc", "mail_subject",
                     "mail_body_text", "mail_body_html", "mail_attachments"]
SEND_EMAIL2_INPUTS = ["mail_from", "mail_incident_id", "mail_to", "mail_cc", "mail_bcc", "mail_subject", "mail_body",
                      "mail_attachments", "mail_inline_template", "mail_template_label", "mail_message_id",
                      "mail_in_reply_to", "mail_importance", "mail_merge_body", "mail_encryption_recipients"]
TABLE_COLUMNS = [("date_sent", "datetimepicker"), ("status", "text"), ("source", "text"), ("inbound_id", "number"),
                 ("from", "text"), ("recipients", "textarea"), ("subject", "text"), ("body", "textarea"),
                 ("attachments", "text"), ("importance", "text"), ("message_id", "text"), ("in_reply_to", "text")]
PLAYBOOKS = {  # name: (display name, object, function, post-processing script, offers a template choice)
    "pb_example_send_incident_email_html": ("Send Incident Email HTML (PB) Example", "incident", "send_email",
                                            "Save Outbound Email Results", False),
    "example_send_incident_email_text": ("Send Incident Email Text (PB) Example", "incident", "send_email",
                                         "Process Results", False),
    "send_incident_email_html2_pb_example": ("Send Incident Email HTML2 (PB) Example", "incident", "send_email2",
                                             "Save Outbound Email Results", True),
    "example_send_task_email_html": ("Send Task Email HTML (PB) Example", "task", "send_email",
                                     "Save Outbound Email Results", False),
    "example_send_task_email_html2": ("Send Task Email HTML2 (PB) Example", "task", "send_email2",
                                      "Save Outbound Email Results", True),
    "outbound_email_reply_to_message": ("Outbound Email Reply to Message (PB)", "email_conversations",
                                        "send_email2", "Save Outbound Email Results", True),
}


@pytest.fixture(scope="module")
def export():
    with open(build.EXPORT_RES, encoding="utf-8") as export_file:
        return json.load(export_file)


def by(items, key):
    return {item[key]: item for item in items}


def playbook_elements(playbook):
    """(root, function element, its node JSON, script element) of a playbook's BPMN."""
    root = ET.fromstring(playbook["content"]["xml"].encode("utf-8"))
    functions = list(root.iter(RESILIENT + "function"))
    scripts = list(root.iter(RESILIENT + "script"))
    assert len(functions) == 1 and len(scripts) == 1, playbook["name"]
    return root, functions[0], json.loads(functions[0].text), scripts[0]


# --- export.res is what the build makes --------------------------------------------------------------------

def test_export_res_is_up_to_date_with_the_definitions():
    with open(build.EXPORT_RES, encoding="utf-8") as export_file:
        shipped = export_file.read()
    assert shipped == build.render(), (
        "fn_outbound_email/util/data/export.res is stale; rebuild it with: " + build.REBUILD_COMMAND)


def test_build_is_deterministic_and_check_reports_a_stale_file(monkeypatch, capsys):
    assert build.render() == build.render()
    assert build.main(["--check"]) == 0
    monkeypatch.setattr(build, "render", lambda: "{}\n")
    assert build.main(["--check"]) == 1
    assert build.REBUILD_COMMAND in capsys.readouterr().out


def test_script_text_joins_the_shared_parts_before_the_script():
    text = build.script_text(("script_helpers.py", "pre_reply_to_message.py"))
    assert text.index("def set_body(") < text.index("set_body(inputs,")
    assert text.endswith("\n") and not text.endswith("\n\n")


# --- cross references ---------------------------------------------------------------------------------------

def test_every_uuid_is_unique_and_every_identity_key_set(export):
    uuids = [value for key, value in _walk(export) if key == "uuid" and value]
    assert all(re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", value) for value in uuids)
    assert len(uuids) == len(set(uuids)), "duplicate uuids"
    assert all(isinstance(value, str) and value for key, value in _walk(export) if key in ("export_key", "name"))
    assert "internal_customizations_field" in by(export["fields"], "name")
    assert by(export["incident_types"], "name")["Customization Packages (internal)"]["uuid"] == \
        soar_objects.INTERNAL_INCIDENT_TYPE["uuid"]


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            for item in _walk(value):
                yield item
    elif isinstance(node, list):
        for value in node:
            for item in _walk(value):
                yield item


def test_functions_refer_to_existing_inputs_and_destination(export):
    fields_by_uuid = by(export["fields"], "uuid")
    destinations = by(export["message_destinations"], "programmatic_name")
    assert set(destinations) == {"email_outbound"}
    assert destinations["email_outbound"]["export_key"] == destinations["email_outbound"]["name"] == "email_outbound"
    for function in export["functions"]:
        assert function["export_key"] == function["name"]
        assert function["destination_handle"] in destinations
        assert isinstance(function["description"]["content"], str) and function["display_name"]
        for item in function["view_items"]:
            assert item["field_type"] == "__function" and item["element"] == "field_uuid"
            field = fields_by_uuid[item["content"]]
            assert field["type_id"] == soar_objects.TYPE_FUNCTION
            assert field["export_key"] == "__function/" + field["name"]


def test_top_level_fields_are_function_inputs_incident_fields_and_the_template_activity_field(export):
    prefixes = {soar_objects.TYPE_FUNCTION: "__function/", soar_objects.TYPE_INCIDENT: "incident/",
                soar_objects.TYPE_ACTIONINVOCATION: "actioninvocation/"}
    for field in export["fields"]:
        assert field["type_id"] in prefixes, field["name"]
        assert field["export_key"] == prefixes[field["type_id"]] + field["name"]
        if field["input_type"] in ("select", "multiselect") and field["type_id"] != soar_objects.TYPE_ACTIONINVOCATION:
            assert field["values"] and sum(value["default"] for value in field["values"]) <= 1
    # SPEC 1: the template choice is also an activity field; its values come from app.config at start-up
    (activity,) = [field for field in export["fields"] if field["type_id"] == soar_objects.TYPE_ACTIONINVOCATION]
    assert activity["name"] == "mail_template_select" and activity["input_type"] == "select"
    assert activity["values"] == [] and activity["blank_option"] is True


def test_playbooks_follow_the_naming_chain_and_resolve_every_reference(export):
    functions = by(export["functions"], "uuid")
    fields_by_uuid = by(export["fields"], "uuid")
    global_scripts = by(export["scripts"], "uuid")
    objects = {"incident", "task"} | {table["type_name"] for table in export["types"]}
    input_type_ids = set()
    for playbook in export["playbooks"]:
        handle = soar_objects.playbook_handle(playbook["uuid"])
        fields_type = playbook["fields_type"]
        assert playbook["export_key"] == playbook["name"]
        assert handle == playbook["deployment_id"] == playbook["field_type_handle"] == fields_type["type_name"] \
            == fields_type["export_key"] == playbook["tag"]["name"]
        assert playbook["object_type"] in objects
        assert playbook["activation_type"] == "manual" and playbook["status"] == "enabled"
        assert isinstance(playbook["description"]["content"], str)

        # activation form: dict of the playbook's own inputs, each shown once, in the form's view items
        view_items = playbook["manual_settings"]["view_items"]
        form_uuids = [item["content"] for item in view_items if item["element"] == "field_uuid"]
        assert all(item["field_type"] == handle for item in view_items if item["element"] == "field_uuid")
        assert all(item["field_type"] is None and item["content"] for item in view_items
                   if item["element"] == "html")
        assert {item["element"] for item in view_items} <= {"field_uuid", "html"}
        inputs = fields_type["fields"]
        assert sorted(form_uuids) == sorted(field["uuid"] for field in inputs.values())
        type_ids = {field["type_id"] for field in inputs.values()}
        assert len(type_ids) == 1 and not type_ids & input_type_ids
        input_type_ids |= type_ids
        for name, field in inputs.items():
            assert field["name"] == name and field["export_key"] == "{0}/{1}".format(handle, name)
            assert field["uuid"] not in fields_by_uuid

        # BPMN: process named after the handle, function and script resolvable, flows wired both ways
        root, function_element, node, script_element = playbook_elements(playbook)
        process = root.find(BPMN + "process")
        assert process.get("id") == process.get("name") == handle
        assert root.find("{0}BPMNDiagram/{0}BPMNPlane".format(BPMNDI)).get("bpmnElement") == handle
        function = functions[function_element.get("uuid")]
        assert root.find(BPMN + "process/" + BPMN + "serviceTask").get("name") == function["display_name"]
        function_inputs = {item["content"] for item in function["view_items"]}
        for input_uuid, value in node["inputs"].items():
            assert input_uuid in function_inputs
            if "select_value" in value["static_input"]:
                assert value["static_input"]["select_value"] in [
                    choice["uuid"] for choice in fields_by_uuid[input_uuid]["values"]]
        assert node["pre_processing_script_language"] == "python3" and node["result_name"]
        local_scripts = by(playbook["local_scripts"], "uuid")
        script = local_scripts.get(script_element.get("uuid")) or global_scripts[script_element.get("uuid")]
        assert root.find(BPMN + "process/" + BPMN + "scriptTask").get("name") == script["name"]
        assert "playbook.functions.results." + node["result_name"] in script["script_text"]
        for local in playbook["local_scripts"]:
            assert local["playbook_handle"] == playbook["name"] and local["language"] == "python3"
        _assert_flows_are_wired(process)


def _assert_flows_are_wired(process):
    nodes = {element.get("id"): element for element in process if element.tag != BPMN + "sequenceFlow"
             and element.get("id")}
    flows = process.findall(BPMN + "sequenceFlow")
    assert flows
    for flow in flows:
        source, target = nodes[flow.get("sourceRef")], nodes[flow.get("targetRef")]
        assert flow.get("id") in [item.text for item in source.findall(BPMN + "outgoing")]
        assert flow.get("id") in [item.text for item in target.findall(BPMN + "incoming")]


def test_data_table_columns_field_and_scripts(export):
    tables = by(export["types"], "type_name")
    table = tables["email_conversations"]
    assert table["type_id"] == soar_objects.TYPE_DATATABLE and table["display_name"] == "Email Conversations"
    assert table["parent_types"] == ["incident"]
    columns = sorted(table["fields"].values(), key=lambda column: column["order"])
    assert [(column["name"], column["input_type"]) for column in columns] == TABLE_COLUMNS
    assert [column["order"] for column in columns] == list(range(12))
    assert all(table["fields"][column["name"]] is column for column in columns)
    assert all(column["export_key"] == "email_conversations/" + column["name"] for column in columns)
    assert len({column["type_id"] for column in columns}) == 1
    assert table["fields"]["body"]["rich_text"] and table["fields"]["recipients"]["rich_text"]

    field = by(export["fields"], "name")["email_message_id"]
    assert (field["input_type"], field["prefix"], field["type_id"]) == ("text", "properties", 0)

    scripts = by(export["scripts"], "name")
    assert set(scripts) == {"Save Outbound Email Results"}
    script = scripts["Save Outbound Email Results"]
    assert (script["programmatic_name"], script["object_type"], script["language"]) == (
        "save_outbound_email_results", "incident", "python3")
    assert script["export_key"] == script["name"] and isinstance(script["description"], str)


# --- customize.py --------------------------------------------------------------------------------------------

def test_customize_py_imports_the_export(export):
    definitions = list(customize.customization_data())
    assert len(definitions) == 1
    decoded = json.loads(base64.b64decode(definitions[0].value).decode("utf-8"))
    assert decoded == export

    functions = by(decoded["functions"], "name")
    fields = by(decoded["fields"], "uuid")
    assert set(functions) == {"send_email", "send_email2"}
    assert [fields[item["content"]]["name"] for item in functions["send_email"]["view_items"]] == SEND_EMAIL_INPUTS
    assert [fields[item["content"]]["name"] for item in functions["send_email2"]["view_items"]] == SEND_EMAIL2_INPUTS
    inputs = by(decoded["fields"], "name")
    assert inputs["mail_incident_id"]["input_type"] == "number" and inputs["mail_merge_body"]["input_type"] == "boolean"
    assert [value["label"] for value in inputs["mail_importance"]["values"]] == ["high", "normal", "low"]
    assert [value["label"] for value in inputs["mail_importance"]["values"] if value["default"]] == ["normal"]
    # the original's contract: only mail_importance is required (the app checks mail_to and mail_incident_id
    # when it runs, with a clear error)
    assert {name for name, field in inputs.items() if field.get("required") == "always"} == {"mail_importance"}
    assert "email_message_id" in inputs
    assert [name for name, _ in TABLE_COLUMNS] == [
        column["name"] for column in sorted(decoded["types"][0]["fields"].values(), key=lambda c: c["order"])]
    assert [script["name"] for script in decoded["scripts"]] == ["Save Outbound Email Results"]

    playbooks = by(decoded["playbooks"], "name")
    assert set(playbooks) == set(PLAYBOOKS)
    functions_by_uuid = by(decoded["functions"], "uuid")
    for name, (display_name, object_type, function, post_script, template_choice) in PLAYBOOKS.items():
        playbook = playbooks[name]
        _, function_element, _, script_element = playbook_elements(playbook)
        assert (playbook["display_name"], playbook["object_type"]) == (display_name, object_type)
        assert functions_by_uuid[function_element.get("uuid")]["name"] == function
        scripts = by(decoded["scripts"] + playbook["local_scripts"], "uuid")
        assert scripts[script_element.get("uuid")]["name"] == post_script
        template = playbook["fields_type"]["fields"].get("mail_template_select")
        assert (template is not None) == template_choice, name
        if template:
            assert template["input_type"] == "select" and template["blank_option"]


def test_customize_entry_point_and_reload_data_match_the_export(export):
    points = [point for point in entry_points(group="resilient.circuits.customize")
              if point.value.startswith("fn_outbound_email.")]
    assert [point.load() for point in points] == [customize.customization_data]
    reload_data = customize.codegen_reload_data()
    assert reload_data["functions"] == sorted(by(export["functions"], "name"))
    assert reload_data["playbooks"] == sorted(by(export["playbooks"], "name"))
    assert reload_data["message_destinations"] == ["email_outbound"]
    assert reload_data["datatables"] == ["email_conversations"]
    assert reload_data["incident_fields"] == ["email_message_id"]
    assert reload_data["scripts"] == ["Save Outbound Email Results"]
    for name in reload_data["playbooks"] + reload_data["functions"]:
        assert name in customize.customization_data.__doc__


# --- the scripts, as SOAR runs them ---------------------------------------------------------------------------

def test_every_script_compiles_with_python3(export):
    for playbook in export["playbooks"]:
        _, _, node, _ = playbook_elements(playbook)
        compile(node["pre_processing_script"], playbook["name"] + " pre-processing", "exec")
        for script in playbook["local_scripts"]:
            compile(script["script_text"], script["name"], "exec")
    for script in export["scripts"]:
        compile(script["script_text"], script["name"], "exec")


class SoarObject(object):
    """Attribute bag like SOAR's script objects: unset attributes read as None."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


class TextArea(SoarObject):
    """A text area input's value: {content, format}."""

    def __init__(self, content):
        super(TextArea, self).__init__(content=content, format="text")


def run_pre_processing(export, playbook_name, playbook_inputs, **objects):
    """The function inputs the playbook's pre-processing script sets."""
    _, _, node, _ = playbook_elements(by(export["playbooks"], "name")[playbook_name])
    inputs = SoarObject()
    scope = dict(objects, inputs=inputs, playbook=SoarObject(inputs=SoarObject(**playbook_inputs)))
    exec(compile(node["pre_processing_script"], playbook_name, "exec"), scope)
    return inputs


def incident(**extra):
    values = dict(id=2095, name="Phishing report", severity_code="High", plan_status="A",
                  description="<div>Mail from <b>ceo@examp1e.com</b> &amp; a link</div>",
                  properties=SoarObject(email_message_id="<inbound-77@mail.example.com>"))
    values.update(extra)
    return SoarObject(**values)


ORIGINAL_ROW = {"from": "Eve Reporter <eve@example.org>", "subject": "Suspicious login", "date_sent": 1735732800000,
                "message_id": "<abc.123@mail.example.org>", "body": "<p>I saw a <b>strange</b> login.</p>"}


def test_reply_to_message_answers_the_row_sender_quoting_the_original(export):
    inputs = run_pre_processing(export, "outbound_email_reply_to_message",
                                {"mail_body": TextArea("Thanks, we are on it.\nSOC"), "mail_merge_body": True},
                                incident=incident(), row=dict(ORIGINAL_ROW))
    assert inputs.mail_to == "Eve Reporter <eve@example.org>"
    assert inputs.mail_subject == "Re: Suspicious login"
    assert inputs.mail_in_reply_to == "<abc.123@mail.example.org>"
    assert inputs.mail_incident_id == 2095 and inputs.mail_importance == "normal"
    assert inputs.mail_body.startswith("Thanks, we are on it.<br>\nSOC")
    assert "On 2025-01-01 12:00 UTC, Eve Reporter &lt;eve@example.org&gt; wrote:" in inputs.mail_body
    # the original is quoted as text: its words, none of its markup
    assert "<blockquote" in inputs.mail_body and ">I saw a strange login.</blockquote>" in inputs.mail_body
    assert inputs.mail_template_label is None and inputs.mail_inline_template is None
    assert inputs.mail_from is None and inputs.mail_message_id is None
    assert compose.normalize_message_id(inputs.mail_in_reply_to, "mail_in_reply_to") == "<abc.123@mail.example.org>"


# active content an inbound mail or a task may carry
HOSTILE_HTML = ('<p>Hello <b>team</b></p><script>alert("x")</script>'
                '<img src="https://track.example/p.gif" width="1" height="1">'
                '<a href="javascript:alert(1)" onclick="steal()">click here</a>'
                '<form action="https://evil.example/"><input name="pw" type="password"></form>'
                '<style>body { display: none }</style><iframe src="https://evil.example/"></iframe>'
                '<!-- <script>hidden()</script> -->&lt;script&gt;shown()&lt;/script&gt;')
ACTIVE_CONTENT = ("<script", "javascript:", "<img", "<form", "<input", "<iframe", "<style", "onclick", "alert(",
                  "hidden()", "track.example", "evil.example")


def test_reply_quotes_a_hostile_original_as_inert_text(export):
    row = dict(ORIGINAL_ROW, body=HOSTILE_HTML)
    for template in (None, "reply_header"):
        inputs = run_pre_processing(export, "outbound_email_reply_to_message",
                                    {"mail_body": TextArea("Noted <b>ok</b>"), "mail_merge_body": True,
                                     "mail_template_select": template}, incident=incident(), row=row)
        body = inputs.mail_body
        assert not [bad for bad in ACTIVE_CONTENT if bad in body.lower()], body
        assert "Hello team" in body and "click here" in body
        # text that looked like markup in the original shows as text
        assert "&lt;script&gt;shown()&lt;/script&gt;" in body
        assert body.startswith("Noted &lt;b&gt;ok&lt;/b&gt;<br>")
        assert inputs.mail_template_label == template


def test_reply_takes_the_original_form_inputs_from_and_generate_message_id(export):
    inputs = run_pre_processing(export, "outbound_email_reply_to_message",
                                {"mail_from": "SOC <soc@example.com>", "mail_message_id": True,
                                 "mail_cc": "lead@example.com", "mail_attachments": "report.pdf",
                                 "mail_body": TextArea("Done.")},
                                incident=incident(), row=dict(ORIGINAL_ROW))
    assert inputs.mail_from == "SOC <soc@example.com>"
    assert (inputs.mail_cc, inputs.mail_attachments) == ("lead@example.com", "report.pdf")
    generated = compose.normalize_message_id(inputs.mail_message_id, "mail_message_id")
    assert generated and generated != "<abc.123@mail.example.org>"
    assert inputs.mail_in_reply_to == "<abc.123@mail.example.org>"
    assert (inputs.mail_body, inputs.mail_merge_body) == ("Done.", None)


def test_reply_with_a_template_puts_the_reply_after_it_and_keeps_a_re_subject(export):
    row = dict(ORIGINAL_ROW, subject="RE: Suspicious login")
    inputs = run_pre_processing(export, "outbound_email_reply_to_message",
                                {"mail_to": "soc-lead@example.com", "mail_body": TextArea("See below."),
                                 "mail_template_select": "reply_header", "mail_importance": "high"},
                                incident=incident(), row=row)
    assert inputs.mail_to == "soc-lead@example.com" and inputs.mail_subject == "RE: Suspicious login"
    assert (inputs.mail_template_label, inputs.mail_body, inputs.mail_merge_body) == ("reply_header", "See below.",
                                                                                      True)
    assert inputs.mail_importance == "high"


class StubSoar(object):
    """The SOAR lookups template_helper makes while rendering the playbooks' templates (`tasks`: the tasks of
    incident 2095 SOAR would answer with)."""

    def __init__(self, tasks=()):
        self._tasks = {task.id: task for task in tasks}

    def get_task(self, incident_id, task_id):
        task = self._tasks[task_id]
        assert incident_id == 2095
        return {"id": task.id, "inc_id": incident_id, "name": task.name, "instructions": task.instructions}

    def get_field_definitions(self, type_name="incident"):
        return {"severity_code": {"input_type": "select", "values": [{"value": 5, "label": "High"}]},
                "description": {"input_type": "textarea"}, "plan_status": {"input_type": "text"}}

    def incident_url(self, incident_id):
        return "https://soar.example.com/#incidents/{0}".format(incident_id)

    def task_url(self, incident_id, task_id):
        return "https://soar.example.com/#incidents/{0}?taskId={1}".format(incident_id, task_id)


def render(template, *tasks):
    context = {"incident": {"id": 2095, "name": "Phishing report", "severity_code": 5, "plan_status": "A",
                            "description": "<p>Mail from the CEO</p>"},
               "template_helper": TemplateHelper(StubSoar(tasks))}
    return TemplateRenderer().render(template, context)


def test_incident_html2_defaults_to_the_summary_template_and_threads_replies(export):
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    inputs = run_pre_processing(export, "send_incident_email_html2_pb_example",
                                {"mail_to": "soc@example.com", "mail_message_id": True, "mail_in_reply_to": True,
                                 "mail_encryption_key": TextArea(pem)}, incident=incident())
    assert inputs.mail_to == "soc@example.com" and inputs.mail_subject == "[2095] Phishing report"
    assert inputs.mail_in_reply_to == "<inbound-77@mail.example.com>"
    assert compose.normalize_message_id(inputs.mail_message_id, "mail_message_id")  # a valid id@host
    assert inputs.mail_encryption_recipients == pem and inputs.mail_importance == "normal"
    assert inputs.mail_body is None and inputs.mail_template_label is None
    html = render(inputs.mail_inline_template)
    assert "Incident 2095: Phishing report" in html and "High" in html
    assert 'href="https://soar.example.com/#incidents/2095"' in html


def test_incident_html2_sends_the_body_as_written_unless_merged_with_a_template(export):
    inputs = run_pre_processing(export, "send_incident_email_html2_pb_example",
                                {"mail_to": "soc@example.com", "mail_body": TextArea("Plain words"),
                                 "mail_template_select": "summary", "mail_subject": "Status"}, incident=incident())
    assert (inputs.mail_body, inputs.mail_template_label, inputs.mail_subject) == ("Plain words", None, "Status")
    assert inputs.mail_message_id is None and inputs.mail_in_reply_to is None
    merged = run_pre_processing(export, "send_incident_email_html2_pb_example",
                                {"mail_to": "soc@example.com", "mail_body": TextArea("Plain words"),
                                 "mail_template_select": "summary", "mail_merge_body": True}, incident=incident())
    assert (merged.mail_template_label, merged.mail_body, merged.mail_merge_body) == ("summary", "Plain words", True)


def test_task_html2_notice_shows_task_text_literally_never_as_template_code(export):
    task = SoarObject(id=994, name="Notify {{ 7*7 }} <ISP>", instructions="<p>Call the {% carrier %}</p>")
    inputs = run_pre_processing(export, "example_send_task_email_html2", {"mail_to": "ops@example.com"},
                                incident=incident(), task=task)
    assert inputs.mail_subject == "[2095] Phishing report Task: Notify {{ 7*7 }} <ISP>"
    html = render(inputs.mail_inline_template, task)
    assert "49" not in html
    assert "Notify {{ 7*7 }} &lt;ISP&gt;" in html
    # rich text instructions keep their formatting and show template syntax as text
    assert "<p>Call the {% carrier %}</p>" in html
    assert 'href="https://soar.example.com/#incidents/2095?taskId=994"' in html


@pytest.mark.parametrize("playbook_name, body_input", [("example_send_task_email_html2", "mail_inline_template"),
                                                        ("example_send_task_email_html", "mail_body_html")])
def test_task_notice_passes_hostile_instructions_through_safe_html(export, playbook_name, body_input):
    # quotes and backslashes try to end the string literal the instructions are written in
    instructions = HOSTILE_HTML + '<p>{{ 7*7 }}</p>" }}{{ 8*8 }}{{ "\\" }}{{ 9*9 }}\\" }}{{ 6*6 }}'
    task = SoarObject(id=994, name="Contain host", instructions=instructions)
    inputs = run_pre_processing(export, playbook_name, {"mail_to": "ops@example.com"}, incident=incident(),
                                task=task)
    html = render(getattr(inputs, body_input), task)
    instructions_html = html.split("Instructions</h3>", 1)[1]
    assert not [bad for bad in ACTIVE_CONTENT if bad in instructions_html.lower()], instructions_html
    assert not {"49", "64", "81", "36"} & set(re.findall(r"\d+", instructions_html))
    assert "<p>Hello <b>team</b></p>" in instructions_html and "click here" in instructions_html
    assert "{{ 7*7 }}" in instructions_html


# every placeholder the shipped scripts have ever filled in, and template code, as a task's name and instructions
PLACEHOLDER_NAMES = ["@TASK_ID@", "@TASK_URL@", "@TASK_NAME@", "@INSTRUCTIONS@", "@INCIDENT_ID@"]


@pytest.mark.parametrize("placeholder", PLACEHOLDER_NAMES)
@pytest.mark.parametrize("playbook_name, body_input", [("example_send_task_email_html2", "mail_inline_template"),
                                                        ("example_send_task_email_html", "mail_body_html")])
def test_a_task_named_after_a_placeholder_never_puts_its_instructions_into_the_template(
        export, playbook_name, body_input, placeholder):
    task = SoarObject(id=994, name=placeholder + " {{ 6*7 }}",
                      instructions="{{ 7*7 }} {{ template_helper.get_datatable('t', 1) }} " + placeholder)
    inputs = run_pre_processing(export, playbook_name, {"mail_to": "ops@example.com"}, incident=incident(),
                                task=task)
    template = getattr(inputs, body_input)
    # the task's text is not in the template's source at all: the template reads it as data when it renders
    assert "7*7" not in template and "6*7" not in template and "get_datatable" not in template
    assert "@TASK_ID@" not in template and "994" in template
    html = render(template, task)
    assert "49" not in html and "42" not in html
    assert placeholder + " {{ 6*7 }}</a>" in html
    assert "{{ 7*7 }} {{ template_helper.get_datatable(&#39;t&#39;, 1) }} " + placeholder in html


def test_fill_placeholders_substitutes_in_one_pass(export):
    _, _, node, _ = playbook_elements(by(export["playbooks"], "name")["example_send_task_email_html2"])
    namespace = {}
    helpers = node["pre_processing_script"].split("# The task notice", 1)[0]
    exec(compile(helpers, "script_helpers", "exec"), namespace)
    fill = namespace["fill_placeholders"]
    assert fill("@A@ and @B@", {"A": "@B@", "B": "{{ 7*7 }}"}) == "@B@ and {{ 7*7 }}"
    assert fill("@A@ @UNKNOWN@", {"A": 1}) == "1 @UNKNOWN@"


def test_task_html2_threads_to_the_incident_email_when_asked(export):
    task = SoarObject(id=994, name="Contain host", instructions=None)
    threaded = run_pre_processing(export, "example_send_task_email_html2",
                                  {"mail_to": "ops@example.com", "mail_in_reply_to": True,
                                   "mail_from": "soc@example.com"}, incident=incident(), task=task)
    assert threaded.mail_in_reply_to == "<inbound-77@mail.example.com>" and threaded.mail_from == "soc@example.com"
    plain = run_pre_processing(export, "example_send_task_email_html2", {"mail_to": "ops@example.com"},
                               incident=incident(), task=task)
    assert plain.mail_in_reply_to is None
    assert ">-</div>" in render(plain.mail_inline_template, task)     # no instructions: a dash


def test_legacy_playbooks_pass_the_from_input(export):
    task = SoarObject(id=7, name="Contain host", instructions=None)
    for name in ("pb_example_send_incident_email_html", "example_send_incident_email_text",
                 "example_send_task_email_html"):
        inputs = run_pre_processing(export, name, {"mail_to": "a@example.com", "mail_from": "soc@example.com"},
                                    incident=incident(), task=task)
        assert inputs.mail_from == "soc@example.com", name


def test_text_playbook_reads_a_hostile_description_as_text(export):
    text = run_pre_processing(export, "example_send_incident_email_text", {"mail_to": "a@example.com"},
                              incident=incident(description=HOSTILE_HTML))
    description = text.mail_body_text.split("Description:\n", 1)[1]
    assert description.startswith("Hello team\nclick here")
    assert "alert(" not in description and "hidden()" not in description and "display: none" not in description
    assert description.endswith("<script>shown()</script>")   # plain text: what the writer typed


def test_legacy_playbooks_set_send_email_inputs(export):
    html = run_pre_processing(export, "pb_example_send_incident_email_html",
                              {"mail_to": "a@example.com", "mail_cc": "b@example.com", "mail_attachments": "*"},
                              incident=incident())
    assert (html.mail_to, html.mail_cc, html.mail_attachments, html.mail_incident_id) == (
        "a@example.com", "b@example.com", "*", 2095)
    assert html.mail_subject == "[2095] Phishing report" and "Incident 2095" in render(html.mail_body_html)

    text = run_pre_processing(export, "example_send_incident_email_text", {"mail_to": "a@example.com"},
                              incident=incident())
    # the text goes in as data through a text template, so app.config's template_file does not replace it
    assert text.mail_body_html == "{{ mail.mail_body_text }}"
    assert text.mail_body_text.splitlines()[:3] == ["Incident 2095: Phishing report", "Severity: High",
                                                    "Status: Active"]
    assert text.mail_body_text.endswith("Mail from ceo@examp1e.com & a link")

    contain = SoarObject(id=7, name="Contain host", instructions=None)
    task = run_pre_processing(export, "example_send_task_email_html", {"mail_to": "a@example.com"},
                              incident=incident(), task=contain)
    assert task.mail_subject == "[2095] Phishing report Task: Contain host"
    assert "taskId=7" in render(task.mail_body_html, contain)


class Incident(SoarObject):
    """An incident that records the rows and notes a script adds."""

    def __init__(self):
        super(Incident, self).__init__(id=2095, rows=[], notes=[])

    def addRow(self, table):
        row = {}
        self.rows.append((table, row))
        return row

    def addNote(self, text):
        self.notes.append(text)


def run_script(script_text, results):
    target = Incident()
    playbook = SoarObject(functions=SoarObject(results=SoarObject(**results)))
    exec(compile(script_text, "script", "exec"), {"incident": target, "playbook": playbook})
    return target


def save_results_script(export):
    return by(export["scripts"], "name")["Save Outbound Email Results"]["script_text"]


def test_save_results_adds_a_conversation_row_from_send_email2_results(export):
    results = {"success": True, "reason": None,
               "inputs": {"mail_to": "Eve <eve@example.org>", "mail_cc": "cc@example.com", "mail_bcc": None,
                          "mail_subject": "Re: Suspicious login", "mail_attachments": "*",
                          "mail_importance": "high", "mail_in_reply_to": "<abc.123@mail.example.org>"},
               "content": {"mail_body": "<p>Thanks</p>", "mail_from": "soc@example.com",
                           "message_id": "<gen.1@example.com>",
                           "recipients": {"accepted": ["eve@example.org"], "refused": {"cc@example.com": "550 no"}},
                           "attachments": {"sent": ["report.pdf"], "missing": []}, "signed": False,
                           "encrypted": False}}
    target = run_script(save_results_script(export), {"outbound_email_results": results})
    assert target.notes == []
    [(table, row)] = target.rows
    assert table == "email_conversations"
    assert isinstance(row.pop("date_sent"), int)
    assert row == {"status": "success; refused: cc@example.com", "source": "outbound", "from": "soc@example.com",
                   "recipients": "To: Eve &lt;eve@example.org&gt;<br>Cc: cc@example.com",
                   "subject": "Re: Suspicious login", "body": "<p>Thanks</p>", "attachments": "report.pdf",
                   "importance": "high", "message_id": "<gen.1@example.com>",
                   "in_reply_to": "<abc.123@mail.example.org>"}


def test_save_results_records_a_failed_legacy_send_and_notes_a_missing_result(export):
    results = {"success": False, "reason": "SMTP server refused the sender",
               "inputs": {"mail_to": "a@example.com", "mail_subject": "[1] x", "mail_from": "me@example.com"},
               "content": {"inputs": ["me@example.com", "a@example.com", "", "", "[1] x"],
                           "message": "SMTP server refused the sender", "text": None, "success": False}}
    [(_, row)] = run_script(save_results_script(export), {"outbound_email_results": results}).rows
    assert row["status"] == "failure: SMTP server refused the sender"
    assert (row["from"], row["subject"], row["body"]) == ("me@example.com", "[1] x", None)

    missing = run_script(save_results_script(export), {})
    assert missing.rows == [] and "outbound_email_results" in missing.notes[0]


def test_process_results_notes_what_send_email_sent(export):
    playbook = by(export["playbooks"], "name")["example_send_incident_email_text"]
    [script] = playbook["local_scripts"]
    results = {"success": True, "content": {"inputs": ["me@example.com", "a@example.com", "", "", "[1] x"],
                                            "message": None, "text": "Incident 1: x", "success": True}}
    [note] = run_script(script["script_text"], {"send_email_results": results}).notes
    assert note.startswith("Email sent\nFrom: me@example.com\nTo: a@example.com") and note.endswith("Incident 1: x")
