# -*- coding: utf-8 -*-
"""Template authors are told about mistakes: undefined names, unknown incident fields and printed methods are
warnings with their template line (`outbound-email render` prints them, the send path logs each once per
template), and no Python object repr reaches a mail, a warning or an error reason."""

import logging
import os
import re

import pytest

from fn_outbound_email.cli.main import main
from fn_outbound_email.cli.offline_soar import SAMPLE_DIR
from fn_outbound_email.lib.errors import TemplateError
from fn_outbound_email.lib.soar.client import clear_field_cache
from fn_outbound_email.lib.templates.render import TemplateRenderer
from tests.support.function_runner import app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

# the send path through resilient-circuits (fixtures circuits_app and server read these)
SMTP_PORT = free_port()
config_data = app_config(SMTP_PORT, smtp_ssl_mode="None", from_email_address="SOAR <soar@example.com>")
resilient_mock = SoarMock

# what Python writes for an object: '<a.b.C object at 0x7f..>', "'a.b.C object'", '<bound method ...>'
PYTHON_REPR = re.compile(r" at 0x[0-9a-fA-F]+|fn_outbound_email\.|\w+ object'|<bound method|<function ")
WARNING_LINE = re.compile(r"^outbound-email render: warning: (\S+) line (\d+): (.*)$")


@pytest.fixture
def render(tmp_path, capsys):
    """Render a template source with `outbound-email render`; returns (exit code, preview text, warnings, stderr)."""
    def run(source, *arguments):
        clear_field_cache()
        template = tmp_path / "t.jinja"
        template.write_text(source, encoding="utf-8")
        out = tmp_path / "out"
        code = main(["render", "--out", str(out), "-t", str(template)] + list(arguments))
        err = capsys.readouterr().err
        preview = out / "preview.txt"
        warnings = [WARNING_LINE.match(line).groups() for line in err.splitlines() if WARNING_LINE.match(line)]
        text = preview.read_text(encoding="utf-8") if code == 0 else None
        return code, text, [(int(line), message) for _, line, message in warnings], err
    return run


def test_render_lists_undefined_names_and_unknown_incident_fields_with_their_lines(render):
    code, text, warnings, _ = render("Incident {{ incident.id }}\n"
                                     "{{ incident.no_such_field }}\n"
                                     "{% for x in not_given %}{{ x }}{% endfor %}\n"
                                     "{% if show_extra %}extra{% endif %}\n"
                                     "{{ incident.name }}\n")
    assert code == 0
    assert text.splitlines()[0] == "Incident 2095" and "extra" not in text
    assert warnings == [(2, "the incident has no field 'no_such_field' (rendered as empty)"),
                        (3, "'not_given' is undefined (rendered as empty)"),
                        (4, "'show_extra' is undefined (rendered as empty)")]


def test_a_custom_field_named_at_the_top_level_gets_the_hint(render, tmp_path):
    incident = tmp_path / "incident.json"
    incident.write_text('{"id": 3, "name": "x", "properties": {"team": "Blue"}}', encoding="utf-8")
    _, text, warnings, _ = render("{{ incident.team }}|{{ incident.properties.team }}\n"
                                  "{{ incident.properties.colour }}\n", "--incident", str(incident))
    assert text.splitlines() == ["|Blue"]
    assert warnings == [(1, "the incident has no field 'team' (it is a custom field: use incident.properties.team) "
                            "(rendered as empty)"),
                        (2, "the incident has no custom field 'colour' (rendered as empty)")]


def test_printing_a_method_or_the_helper_prints_nothing_and_says_why(render):
    # the hint writes the call: with (...) when the method needs arguments, with () when it needs none
    _, text, warnings, err = render("[{{ template_helper.get_notes }}]\n[{{ template_helper }}]\n"
                                    "[{{ incident.name.upper }}]\n[{{ incident.name.replace }}]\n")
    assert text == "[]\n[]\n[]\n[]\n"
    assert warnings == [
        (1, "template_helper.get_notes is a method: call it with parentheses, e.g. "
            "{{ template_helper.get_notes(...) }} (printed nothing)"),
        (2, "template_helper cannot be shown as text (printed nothing)"),
        (3, "incident.name.upper is a method: call it with parentheses, e.g. {{ incident.name.upper() }} "
            "(printed nothing)"),
        (4, "incident.name.replace is a method: call it with parentheses, e.g. {{ incident.name.replace(...) }} "
            "(printed nothing)")]
    assert not PYTHON_REPR.search(err)


@pytest.mark.parametrize("source", [
    "{{ not_given | default('x') }}{% if not_given is defined %}y{% endif %}{{ incident.nope is defined }}\n",
    "{% set show = show | default(false) %}{% if show %}shown{% endif %}{{ incident.name }}\n",
])
def test_the_ways_to_test_for_a_missing_value_do_not_warn(render, source):
    code, _, warnings, err = render(source)
    assert code == 0 and warnings == [] and "warning" not in err


@pytest.mark.parametrize("template, switches", [
    ("example_send_email.jinja", ["--set", "show_artifacts=true", "--set", "show_notes=true"]),
    ("example_send_email.jinja", []),
    ("datatable.jinja", []),
])
def test_shipped_templates_render_the_sample_without_warnings(tmp_path, capsys, template, switches):
    clear_field_cache()
    path = os.path.join(os.path.dirname(SAMPLE_DIR), "templates", template)
    assert main(["render", "--out", str(tmp_path), "-t", path] + switches) == 0
    assert "warning" not in capsys.readouterr().err


def test_each_warning_is_logged_once_per_template(caplog):
    renderer = TemplateRenderer()
    caplog.set_level(logging.WARNING, logger="fn_outbound_email.lib.templates.check")
    for _ in range(3):
        rendered = renderer.render("a\n{{ nope }}\n{{ incident.missing }}", {"incident": {"id": 1}}, name="t1")
        assert [str(warning) for warning in rendered.warnings] == [
            "line 2: 'nope' is undefined (rendered as empty)",
            "line 3: the incident has no field 'missing' (rendered as empty)"]
    renderer.render("{{ nope }}", {}, name="t2")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["Template 't1' line 2: 'nope' is undefined (rendered as empty)",
                        "Template 't1' line 3: the incident has no field 'missing' (rendered as empty)",
                        "Template 't2' line 1: 'nope' is undefined (rendered as empty)"]
    assert all("%" not in record.msg.replace("%s", "") for record in caplog.records)


@pytest.mark.parametrize("source, expected", [
    ("{{ template_helper.no_such_method() }}", "template_helper has no method 'no_such_method'"),
    ("{{ incident.name.nope() }}", "a text has no attribute or key 'nope'"),
    ("{{ incident.no_field.deeper }}", "the incident has no field 'no_field'"),
    ("{{ not_given() }}", "'not_given' is undefined"),
    ("{{ template_helper + 1 }}", "unsupported operand type(s) for +: 'TemplateHelper' and 'int'"),
    ("{{ template_helper.get_notes.x.y }}", "a value of type method has no attribute or key 'x'"),
])
def test_errors_name_things_without_python_object_reprs(source, expected):
    helper_context = _sample_context()
    with pytest.raises(TemplateError) as raised:
        TemplateRenderer().render("x\n" + source, helper_context, name="t.jinja")
    message = str(raised.value)
    assert expected in message and "line 2" in message
    assert not PYTHON_REPR.search(message), message


def _sample_context():
    from fn_outbound_email.cli.offline_soar import load_incident_data, offline_soar_client
    from fn_outbound_email.lib.templates.helper import TemplateHelper
    data = load_incident_data()
    return {"incident": data.incident, "template_helper": TemplateHelper(offline_soar_client(data)), "mail": {}}


def test_send_email2_reason_and_body_carry_no_python_repr(circuits_app, server):
    failed = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com",
        "mail_inline_template": "<p>{{ template_helper.get_notes.nope() }}</p>"})
    assert failed["success"] is False
    assert "has no attribute or key 'nope'" in failed["reason"] and not PYTHON_REPR.search(failed["reason"])

    sent = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com",
        "mail_inline_template": "<p>[{{ template_helper }}][{{ template_helper.get_artifacts }}]</p>"})
    assert sent["success"] is True, sent["reason"]
    assert "<p>[][]</p>" in sent["content"]["mail_body"]
    assert not PYTHON_REPR.search(server.messages[-1].data.decode("ascii", "replace"))


def test_send_path_logs_a_template_warning_once_for_many_mails(circuits_app, server, caplog):
    caplog.set_level(logging.WARNING, logger="fn_outbound_email.lib.templates.check")
    inputs = {"mail_incident_id": INCIDENT_ID, "mail_to": "alice@example.com",
              "mail_inline_template": "Incident {{ incident.id }}\n{{ incident.no_such_field }} (once)"}
    for _ in range(3):
        assert call_function(circuits_app, "send_email2", inputs)["success"] is True
    logged = [record.getMessage() for record in caplog.records if "no_such_field" in record.getMessage()]
    assert logged == ["Template 'mail_inline_template' line 2: the incident has no field 'no_such_field' "
                      "(rendered as empty)"]
    assert len(server.messages) == 3


def test_demo_prints_the_warnings_of_the_template_it_sends(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "mine.jinja"
    template.write_text("Incident {{ incident.id }}\n{{ incident.sevrity_code }}\n", encoding="utf-8")
    assert main(["demo", "--template", str(template)]) == 0
    err = capsys.readouterr().err
    assert "outbound-email demo: warning: {0} line 2: the incident has no field 'sevrity_code'".format(template) in err


def test_misspelt_names_get_a_did_you_mean(render):
    code, text, warnings, _ = render("{{ incident.nmae }}\n"
                                     "{{ template_helper.get_incident_value(incident, 'severity_cod') }}\n"
                                     "{{ incident.properties.email_mesage_id }}\n"
                                     "{{ incident.zzzz }}\n")
    assert code == 0
    assert warnings == [
        (1, "the incident has no field 'nmae' (did you mean 'name'?) (rendered as empty)"),
        (2, "get_incident_value: the incident has no field 'severity_cod' (did you mean 'severity_code'?) (gave None)"),
        (3, "the incident has no custom field 'email_mesage_id' (did you mean 'email_message_id'?) "
            "(rendered as empty)"),
        (4, "the incident has no field 'zzzz' (rendered as empty)")]


def test_a_misspelt_helper_method_gets_a_did_you_mean():
    with pytest.raises(TemplateError) as raised:
        TemplateRenderer().render("{{ template_helper.get_note(note) }}", _sample_context(), name="t.jinja")
    assert "template_helper has no method 'get_note' (did you mean 'get_notes'?)" in str(raised.value)
