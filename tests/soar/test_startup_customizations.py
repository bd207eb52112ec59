# -*- coding: utf-8 -*-
"""Start-up customizations: template choices refreshed in the playbooks' forms, the Email tab added.

The app is started by pytest-resilient-circuits against a mock SOAR that
records what the app PUTs; the playbook forms are the ones the shipped
export.res declares.
"""

import copy
import json
import logging
import re

import pytest
from pytest_resilient_circuits import resilient_endpoint

from fn_outbound_email.lib.soar import startup as soar_setup
from tests.support.soar_mock import SoarMock, isolated_endpoints

ORG_TYPE_ID = 1240
INCIDENT_LAYOUT_ID = 77
FIELD_PATH = re.compile(r"/types/([A-Za-z0-9_]+)/fields/mail_template_select")

config_data = """[fn_outbound_email]
smtp_server = 127.0.0.1
enable_email_conversations = true

[fn_outbound_email:templates]
Incident summary = data/templates/example_send_email.jinja
Data table = data/templates/datatable.jinja
"""


def select_field(type_name, labels):
    return {"id": 900, "name": "mail_template_select", "input_type": "select", "type_id": 1252,
            "text": "Template", "export_key": "{0}/mail_template_select".format(type_name),
            "values": [{"value": 500 + index, "label": label, "enabled": True, "hidden": False, "uuid": "u%d" % index}
                       for index, label in enumerate(labels)]}


@isolated_endpoints
class StartupSoarMock(SoarMock):
    """SOAR with the playbook forms, optionally an activity field, and the incident layout."""

    field_types = {}          # type name -> select field definition (class level: the app builds its own instance)
    puts = []                 # (path, payload) of every PUT, in order
    fail_types = set()        # type names whose GET answers 403 (an API key without the permission)
    layout = None

    @classmethod
    def reset(cls, playbook_types, activity_field=False, current_labels=(), fail_types=(), fields=None):
        cls.field_types = {name: select_field(name, current_labels) for name in playbook_types}
        cls.field_types.update(copy.deepcopy(fields or {}))
        if activity_field:
            cls.field_types["actioninvocation"] = select_field("actioninvocation", current_labels)
        cls.fail_types = set(fail_types)
        cls.puts = []
        cls.layout = {"id": INCIDENT_LAYOUT_ID, "name": "incident", "content": [
            {"element": "tab", "step_label": "Summary", "predefined_uuid": "summary", "fields": [], "show_if": []}]}

    @resilient_endpoint("GET", r"/types/[A-Za-z0-9_]+/fields/mail_template_select")
    def get_select(self, request):
        type_name = FIELD_PATH.search(request.url).group(1)
        if type_name in self.fail_types:
            return self._json(request, {"message": "Forbidden"}, status=403)
        if type_name not in self.field_types:
            return self._json(request, {"message": "Not found"}, status=404)
        return self._json(request, copy.deepcopy(self.field_types[type_name]))

    @resilient_endpoint("PUT", r"/types/[A-Za-z0-9_]+/fields/mail_template_select")
    def put_select(self, request):
        type_name = FIELD_PATH.search(request.url).group(1)
        payload = request.json()
        StartupSoarMock.puts.append((type_name, payload))
        self.field_types[type_name] = payload
        return self._json(request, payload)

    @resilient_endpoint("GET", r"/types$")
    def all_types(self, request):
        return self._json(request, {"organization": {"type_id": ORG_TYPE_ID, "type_name": "organization"}})

    @resilient_endpoint("GET", r"/layouts\?type=%d" % ORG_TYPE_ID)
    def layouts(self, request):
        return self._json(request, [copy.deepcopy(StartupSoarMock.layout)])

    @resilient_endpoint("PUT", r"/layouts/%d" % INCIDENT_LAYOUT_ID)
    def put_layout(self, request):
        payload = request.json()
        StartupSoarMock.puts.append(("layout", payload))
        StartupSoarMock.layout = payload
        return self._json(request, payload)


resilient_mock = StartupSoarMock
try:
    SHIPPED_FORMS = [handle for handle, _ in soar_setup.playbook_forms_with_template_select()]
except OSError:          # reported by the first test rather than as a collection error
    SHIPPED_FORMS = []
# the mock must be ready before the app starts, which happens when the circuits_app fixture is first used
StartupSoarMock.reset(SHIPPED_FORMS, activity_field=True, current_labels=["Old template", "incident summary"])


def email_tabs(layout):
    return [tab for tab in layout["content"] if tab.get("predefined_uuid") == soar_setup.EmailTab.UUID]


class TestAtStartup:
    """What the running app did to the mock SOAR when it was loaded."""

    def test_shipped_export_declares_playbooks_with_a_template_choice(self):
        # the seed's HTML examples offer a template choice; at least these must be found
        assert len(SHIPPED_FORMS) >= 2
        assert all(name.startswith("playbook_") for name in SHIPPED_FORMS)

    def test_every_shipped_playbook_form_and_the_activity_field_got_the_labels(self, circuits_app):
        updated = {type_name: payload for type_name, payload in StartupSoarMock.puts if type_name != "layout"}
        assert set(updated) == set(SHIPPED_FORMS) | {"actioninvocation"}
        for type_name, payload in updated.items():
            # app.config's parser lower-cases keys, so the labels arrive lower-cased
            assert [value["label"] for value in payload["values"]] == ["incident summary", "data table"]
            # the whole field definition goes back, only the values change
            assert payload["export_key"] == "{0}/mail_template_select".format(type_name)
            kept = payload["values"][0]
            assert kept["value"] == 501 and kept["uuid"] == "u1"       # an existing choice keeps its identity
            assert payload["values"][1] == {"label": "data table", "enabled": True, "hidden": False}

    def test_email_tab_added_with_table_and_message_id_field(self, circuits_app):
        layouts = [payload for type_name, payload in StartupSoarMock.puts if type_name == "layout"]
        assert len(layouts) == 1
        (tab,) = email_tabs(layouts[0])
        assert tab["step_label"] == "Email"
        contents = {(field["element"], field["content"]) for field in tab["fields"]}
        assert contents == {("field", "email_message_id"), ("datatable", "email_conversations")}
        assert layouts[0]["content"][0]["step_label"] == "Summary"   # existing tabs untouched


@pytest.fixture
def soar():
    """A SoarClient whose REST client talks to a fresh StartupSoarMock."""
    import resilient
    from fn_outbound_email.lib.soar.client import SoarClient
    opts = {"host": "soar.example.invalid", "org": "Test Organization", "email": "tester@example.com",
            "password": "not-a-real-password", "resilient_mock": "tests.soar.test_startup_customizations.StartupSoarMock"}
    return SoarClient.for_app(resilient.get_client(opts), {"resilient": opts}), opts


def write_export(tmp_path, playbooks):
    path = tmp_path / "export.res"
    path.write_text(json.dumps({"playbooks": playbooks}), encoding="utf-8")
    return str(path)


def playbook(handle, inputs):
    return {"name": "pb_" + handle, "display_name": "Playbook " + handle.upper(),
            "fields_type": {"type_name": handle, "fields": {name: {"name": name} for name in inputs}}}


def app_opts(mock_opts, labels, conversations=False):
    opts = dict(mock_opts)
    opts["fn_outbound_email"] = {"smtp_server": "127.0.0.1", "enable_email_conversations": str(conversations)}
    opts["fn_outbound_email:templates"] = {label: "/templates/{0}.jinja".format(index)
                                           for index, label in enumerate(labels)}
    return opts


class TestConfigurationCheck:
    def test_a_configuration_that_cannot_work_is_logged_at_start_up(self, soar, tmp_path, caplog):
        client, mock_opts = soar
        opts = app_opts(mock_opts, [])
        opts["fn_outbound_email"].update(oauth2_grant="client_credentials", client_id="app", token_url="https://t/",
                                         oauth2_subject="soar@example.com")
        StartupSoarMock.reset([])
        with caplog.at_level(logging.ERROR):
            soar_setup.apply_startup_customizations(opts, client, export_path=write_export(tmp_path, []))
        assert "every send will fail" in caplog.text and "client_secret" in caplog.text

    def test_a_working_configuration_logs_no_error(self, soar, tmp_path, caplog):
        client, mock_opts = soar
        StartupSoarMock.reset([])
        with caplog.at_level(logging.ERROR):
            soar_setup.apply_startup_customizations(app_opts(mock_opts, []), client, export_path=write_export(tmp_path, []))
        assert soar_setup.report_configuration_problem(app_opts(mock_opts, [])) is None
        assert "every send will fail" not in caplog.text


class TestRefreshRules:
    def test_only_playbooks_with_the_input_are_touched(self, soar, tmp_path):
        client, mock_opts = soar
        export = write_export(tmp_path, [playbook("playbook_a", ["mail_to", "mail_template_select"]),
                                         playbook("playbook_b", ["mail_to"])])
        StartupSoarMock.reset(["playbook_a", "playbook_b"])
        soar_setup.apply_startup_customizations(app_opts(mock_opts, ["One"]), client, export_path=export)
        assert [type_name for type_name, _ in StartupSoarMock.puts] == ["playbook_a"]

    def test_unchanged_labels_cause_no_put(self, soar, tmp_path):
        client, mock_opts = soar
        export = write_export(tmp_path, [playbook("playbook_a", ["mail_template_select"])])
        StartupSoarMock.reset(["playbook_a"], current_labels=["One", "Two"])
        soar_setup.apply_startup_customizations(app_opts(mock_opts, ["One", "Two"]), client, export_path=export)
        assert StartupSoarMock.puts == []

    def test_no_labels_configured_leaves_choices_alone(self, soar, tmp_path):
        client, mock_opts = soar
        export = write_export(tmp_path, [playbook("playbook_a", ["mail_template_select"])])
        StartupSoarMock.reset(["playbook_a"], current_labels=["Keep me"])
        soar_setup.apply_startup_customizations(app_opts(mock_opts, []), client, export_path=export)
        assert StartupSoarMock.puts == []

    def test_one_failing_playbook_is_logged_and_the_others_still_updated(self, soar, tmp_path, caplog):
        client, mock_opts = soar
        export = write_export(tmp_path, [playbook("playbook_a", ["mail_template_select"]),
                                         playbook("playbook_missing", ["mail_template_select"]),
                                         playbook("playbook_c", ["mail_template_select"])])
        StartupSoarMock.reset(["playbook_a", "playbook_c"], fail_types={"playbook_a"})
        with caplog.at_level(logging.WARNING):
            soar_setup.apply_startup_customizations(app_opts(mock_opts, ["One"]), client, export_path=export)
        assert [type_name for type_name, _ in StartupSoarMock.puts] == ["playbook_c"]
        # named by display name, never by the form's handle
        assert "Playbook PLAYBOOK_A" in caplog.text and "Playbook PLAYBOOK_MISSING" in caplog.text
        assert "playbook_a" not in caplog.text and "playbook_missing" not in caplog.text

    def test_unreadable_export_is_logged_not_raised(self, soar, tmp_path, caplog):
        client, mock_opts = soar
        StartupSoarMock.reset([], activity_field=True)
        with caplog.at_level(logging.ERROR):
            soar_setup.apply_startup_customizations(app_opts(mock_opts, ["One"]), client,
                                                    export_path=str(tmp_path / "absent.res"))
        assert "absent.res" in caplog.text
        # the activity field is still refreshed
        assert [type_name for type_name, _ in StartupSoarMock.puts] == ["actioninvocation"]

    def test_existing_email_tab_gets_only_missing_elements(self, soar, tmp_path):
        client, mock_opts = soar
        StartupSoarMock.reset([])
        StartupSoarMock.layout["content"].append(
            {"element": "tab", "step_label": "Email", "predefined_uuid": soar_setup.EmailTab.UUID, "show_if": [],
             "fields": [{"element": "datatable", "content": "email_conversations"}]})
        soar_setup.apply_startup_customizations(app_opts(mock_opts, [], conversations=True), client,
                                                export_path=write_export(tmp_path, []))
        (layout_put,) = [payload for type_name, payload in StartupSoarMock.puts if type_name == "layout"]
        (tab,) = email_tabs(layout_put)
        assert [field["content"] for field in tab["fields"]] == ["email_conversations", "email_message_id"]

    def test_conversations_disabled_leaves_the_layout_alone(self, soar, tmp_path):
        client, mock_opts = soar
        StartupSoarMock.reset([])
        soar_setup.apply_startup_customizations(app_opts(mock_opts, [], conversations=False), client,
                                                export_path=write_export(tmp_path, []))
        assert StartupSoarMock.puts == []

    def test_shipped_placeholder_choices_are_replaced_and_logged_by_display_name(self, soar, caplog):
        # SOAR holds the forms as export.res installed them: the original's placeholder choice
        client, mock_opts = soar
        with open(soar_setup.SHIPPED_EXPORT, encoding="utf-8") as export_file:
            export = json.load(export_file)
        installed = {playbook["fields_type"]["type_name"]: dict(
            playbook["fields_type"]["fields"]["mail_template_select"], id=900)
            for playbook in export["playbooks"] if "mail_template_select" in playbook["fields_type"]["fields"]}
        placeholders = {value["label"] for field in installed.values() for value in field["values"]}
        assert placeholders == {"<add template name from app.config>", "<change to template names in app.config>"}
        StartupSoarMock.reset([], fields=installed)
        with caplog.at_level(logging.INFO, logger="fn_outbound_email"):
            soar_setup.apply_startup_customizations(app_opts(mock_opts, ["Incident summary", "Reply"]), client)
        updated = dict(StartupSoarMock.puts)
        assert set(updated) == set(installed)
        for type_name, payload in updated.items():
            assert [value["label"] for value in payload["values"]] == ["Incident summary", "Reply"]
            assert payload["uuid"] == installed[type_name]["uuid"]      # the field itself keeps its identity
        display_names = {playbook["display_name"] for playbook in export["playbooks"]
                         if playbook["fields_type"]["type_name"] in installed}
        assert display_names == {"Outbound Email Reply to Message (PB)", "Send Incident Email HTML2 (PB) Example",
                                 "Send Task Email HTML2 (PB) Example"}
        for display_name in display_names:
            assert "Template choices of playbook '{0}' set to: Incident summary, Reply".format(display_name) \
                in caplog.text
        assert "playbook_" not in caplog.text

    def test_select_values_keep_order_of_labels(self):
        current = [{"label": "B", "value": 2}, {"label": "A", "value": 1}]
        values = soar_setup.select_values_for(["A", "C", "B"], current)
        assert [value["label"] for value in values] == ["A", "C", "B"]
        assert values[0]["value"] == 1 and values[2]["value"] == 2 and "value" not in values[1]


def test_template_labels_match_whatever_their_case():
    # the select shows labels as app.config's parser stored them (lower case); playbooks may pass any case
    from fn_outbound_email.lib.settings import load_settings
    settings = load_settings({"fn_outbound_email": {"smtp_server": "127.0.0.1"},
                              "fn_outbound_email:templates": {"incident summary": "/t/summary.jinja"}})
    assert settings.template_for_label("Incident Summary ") == "/t/summary.jinja"
    assert settings.template_for_label("incident summary") == "/t/summary.jinja"
    assert settings.template_for_label("summary") is None
