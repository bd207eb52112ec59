# -*- coding: utf-8 -*-
"""Drop-in: the function contract playbooks written for IBM's original app rely on.

SOAR no longer marks mail_to or mail_incident_id required on the function forms, so the code is what
enforces them: send_email sends to the app's own address when mail_to is empty (as the original does),
send_email2 needs mail_to. Results keep every key the original returns (plus ours), and the
payload_samples/ shown to playbook authors carry those keys too.
"""

import json
import os

import pytest

from fn_outbound_email.components.funct_send_email import build_request
from fn_outbound_email.lib.mailer import Mailer
from fn_outbound_email.lib.settings import load_settings
from tests.support.function_runner import FunctionRaised, app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

SMTP_PORT = free_port()
APP_ADDRESS = "soar@example.com"
SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "payload_samples")

config_data = app_config(SMTP_PORT, from_email_address=APP_ADDRESS)

resilient_mock = SoarMock

# the keys of the original's results (its README shows both shapes), and the payload around them
SEND_EMAIL_CONTENT_KEYS = {"inputs", "message", "text", "success"}
SEND_EMAIL2_ORIGINAL_KEYS = {"mail_body", "mail_from"}
PAYLOAD_KEYS = {"version", "success", "reason", "content", "raw", "inputs", "metrics"}


def send_email(circuits_app, **inputs):
    inputs.setdefault("mail_incident_id", INCIDENT_ID)
    inputs.setdefault("mail_subject", "[2314] Legacy")
    return call_function(circuits_app, "send_email", {key: value for key, value in inputs.items()
                                                       if value is not Ellipsis})


def send_email2(circuits_app, **inputs):
    inputs.setdefault("mail_incident_id", INCIDENT_ID)
    return call_function(circuits_app, "send_email2", {key: value for key, value in inputs.items()
                                                        if value is not Ellipsis})


class TestSendEmailWithoutMailTo:
    """`...` leaves the input out of the call entirely, as a playbook that never sets it does."""

    @pytest.mark.parametrize("mail_to", [..., "", "   "])
    def test_empty_mail_to_sends_to_from_email_address(self, circuits_app, server, mail_to):
        result = send_email(circuits_app, mail_to=mail_to, mail_body_text="to myself")
        assert result["success"] is True, result["reason"]
        assert [message.rcpt_tos for message in server.messages] == [[APP_ADDRESS]]
        assert server.messages[0].message["To"] == APP_ADDRESS
        # the original echoes the recipient it used, not the empty input
        assert result["content"]["inputs"] == [APP_ADDRESS, APP_ADDRESS, "", "", "[2314] Legacy"]

    def test_given_mail_to_is_used_as_it_is(self, circuits_app, server):
        result = send_email(circuits_app, mail_to="alice@example.com", mail_from="sender@example.com",
                            mail_body_text="x")
        assert result["success"] is True
        assert server.messages[0].rcpt_tos == ["alice@example.com"]
        assert result["content"]["inputs"][:2] == ["sender@example.com", "alice@example.com"]

    def test_no_mail_to_and_no_app_address_is_a_clear_error(self):
        settings = load_settings({"fn_outbound_email": {"smtp_server": "127.0.0.1", "smtp_user": "",
                                                        "from_email_address": ""}})
        with pytest.raises(ValueError) as raised:
            build_request({"mail_incident_id": INCIDENT_ID, "mail_subject": "s", "mail_to": ""},
                          Mailer(settings, soar=None))
        assert "mail_to" in str(raised.value) and "from_email_address" in str(raised.value)

    @pytest.mark.parametrize("missing", ["mail_subject", "mail_incident_id"])
    def test_subject_and_incident_id_are_still_required(self, circuits_app, server, missing):
        with pytest.raises(FunctionRaised) as raised:
            send_email(circuits_app, mail_to="alice@example.com", mail_body_text="x", **{missing: ...})
        assert isinstance(raised.value.original, ValueError) and missing in str(raised.value)
        assert server.messages == []


class TestSendEmail2RequiresMailTo:

    @pytest.mark.parametrize("mail_to", [..., "", "  ,  "])
    def test_missing_mail_to_is_a_clear_error(self, circuits_app, server, mail_to):
        with pytest.raises(FunctionRaised) as raised:
            send_email2(circuits_app, mail_to=mail_to, mail_body="x")
        assert isinstance(raised.value.original, ValueError)
        assert "mail_to" in str(raised.value)
        assert server.messages == []

    def test_missing_incident_id_is_a_clear_error(self, circuits_app, server):
        with pytest.raises(FunctionRaised) as raised:
            send_email2(circuits_app, mail_to="alice@example.com", mail_body="x", mail_incident_id=...)
        assert isinstance(raised.value.original, ValueError) and "mail_incident_id" in str(raised.value)
        assert server.messages == []


class TestResultKeys:

    def test_send_email_result_has_the_original_shape_sent_and_not_sent(self, circuits_app, server):
        sent = send_email(circuits_app, mail_to="alice@example.com", mail_body_html="<p>{{ incident.id }}</p>")
        failed = send_email(circuits_app, mail_to="alice@example.com", mail_body_html="{% if %}")
        for payload, success in ((sent, True), (failed, False)):
            assert set(payload) >= PAYLOAD_KEYS
            assert set(payload["content"]) == SEND_EMAIL_CONTENT_KEYS
            assert payload["content"]["success"] is success and payload["success"] is success
            assert len(payload["content"]["inputs"]) == 5
        assert sent["content"]["text"] == "<p>2314</p>" and sent["content"]["message"] is None
        assert failed["content"]["message"]

    def test_send_email2_result_keeps_the_original_keys_sent_and_not_sent(self, circuits_app, server):
        sent = send_email2(circuits_app, mail_to="alice@example.com", mail_body="hello")
        failed = send_email2(circuits_app, mail_to="alice@example.com", mail_template_label="no_such_label")
        for payload in (sent, failed):
            assert set(payload) >= PAYLOAD_KEYS
            assert set(payload["content"]) >= SEND_EMAIL2_ORIGINAL_KEYS | {"message_id", "recipients", "attachments"}
            assert payload["content"]["mail_from"] == APP_ADDRESS      # the sender used, as the original reports
        assert sent["success"] is True and sent["content"]["mail_body"] == "hello"
        assert failed["success"] is False and failed["content"]["mail_body"] is None
        assert "no_such_label" in failed["reason"]


@pytest.mark.parametrize("function_name, original_keys", [("send_email", SEND_EMAIL_CONTENT_KEYS),
                                                          ("send_email2", SEND_EMAIL2_ORIGINAL_KEYS)])
def test_payload_samples_show_the_original_keys(function_name, original_keys):
    with open(os.path.join(SAMPLES, function_name, "output_json_example.json"), encoding="utf-8") as sample:
        example = json.load(sample)
    assert set(example) >= PAYLOAD_KEYS
    assert set(example["content"]) >= original_keys


@pytest.mark.parametrize("function_name, inputs", [("send_email", {"mail_subject": "s", "mail_body_text": "x"}),
                                                   ("send_email2", {"mail_body": "x"})])
def test_payload_samples_name_the_package_as_the_functions_report_it(circuits_app, server, function_name, inputs):
    payload = call_function(circuits_app, function_name, dict(inputs, mail_incident_id=INCIDENT_ID,
                                                              mail_to="alice@example.com"))
    with open(os.path.join(SAMPLES, function_name, "output_json_example.json"), encoding="utf-8") as sample:
        assert json.load(sample)["metrics"]["package"] == payload["metrics"]["package"] == "fn_outbound_email"
