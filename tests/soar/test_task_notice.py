# -*- coding: utf-8 -*-
"""The shipped task playbooks end to end: their pre-processing script (as export.res ships it) makes the inputs,
the functions render and send them through a real SMTP server, and the task's name and instructions (placeholders
and template code, as anyone editing a task may write them) arrive as text, never run as template code."""

import json
import pytest

from fn_outbound_email.util.customizations import build
from tests.support.function_runner import app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, OTHER_INCIDENT_TASK_ID, TASK_ID, TASKS, SoarMock
from tests.soar.test_customizations import by, playbook_elements, SoarObject

SMTP_PORT = free_port()
config_data = app_config(SMTP_PORT, smtp_ssl_mode="None", from_email_address="soar@example.com")
resilient_mock = SoarMock


def playbook_inputs(playbook_name, task_id):
    """The function inputs the shipped playbook's script sets for the mock SOAR's incident and task."""
    with open(build.EXPORT_RES, encoding="utf-8") as export_file:
        export = json.load(export_file)
    _, _, node, _ = playbook_elements(by(export["playbooks"], "name")[playbook_name])
    task = TASKS.get(task_id) or {"id": task_id, "name": "gone", "instructions": None}
    inputs = SoarObject()
    scope = {"inputs": inputs, "playbook": SoarObject(inputs=SoarObject(mail_to="ops@example.com")),
             "incident": SoarObject(id=INCIDENT_ID, name="Phishing", properties=SoarObject(email_message_id=None)),
             "task": SoarObject(**task)}
    exec(compile(node["pre_processing_script"], playbook_name, "exec"), scope)
    return {name: value for name, value in vars(inputs).items() if value is not None}


def html_of(server):
    return server.messages[-1].message.get_body(preferencelist=("html",)).get_content()


@pytest.mark.parametrize("playbook_name, function_name", [("example_send_task_email_html2", "send_email2"),
                                                           ("example_send_task_email_html", "send_email")])
def test_task_text_arrives_as_text_through_a_real_send(circuits_app, server, playbook_name, function_name):
    result = call_function(circuits_app, function_name, playbook_inputs(playbook_name, TASK_ID))
    assert result["success"] is True, result
    html = html_of(server)
    assert "49" not in html and "42" not in html
    assert "@INSTRUCTIONS@ {{ 6*7 }}</a>" in html
    instructions = html.split("Instructions</h3>", 1)[1]
    assert "Run {{ 7*7 }}" in instructions and "@TASK_ID@" in instructions
    assert "<script" not in instructions and "alert(1)" not in instructions
    assert "taskId={0}".format(TASK_ID) in html


def test_a_task_of_another_incident_is_not_read(circuits_app, server):
    result = call_function(circuits_app, "send_email2",
                           playbook_inputs("example_send_task_email_html2", OTHER_INCIDENT_TASK_ID))
    assert result["success"] is False
    assert "belongs to incident {0}, not to incident {1}".format(INCIDENT_ID + 1, INCIDENT_ID) in result["reason"]
    assert "secret plans" not in json.dumps(result) and not server.messages
