# -*- coding: utf-8 -*-
"""send_email (legacy v1 inputs and result shape) end to end on the shared pipeline."""

import os

import pytest

from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from tests.support.function_runner import FunctionRaised, app_config, send_function
from tests.support.smtp_server import SmtpTestServer, free_port
from tests.support.soar_mock import SoarMock

SMTP_PORT = free_port()
TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "templates")

config_data = app_config(SMTP_PORT, from_email_address="soar@example.com",
                         template_file=os.path.join(TEMPLATES, "incident_html.jinja"))

resilient_mock = SoarMock


def send(circuits_app, **inputs):
    return send_function(circuits_app, "send_email", {"mail_subject": "[2314] Legacy"}, **inputs)


class TestSendEmail:

    def test_html_template_input_wins_and_v1_result_shape(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_cc="carol@example.com",
                      mail_bcc="hidden@example.com", mail_from="sender@example.com",
                      mail_body_html="<p>Incident {{ incident.id }}: {{ incident.name }}</p>",
                      mail_body_text="ignored text")
        assert result["success"] is True
        received = server.messages[0]
        assert received.rcpt_tos == ["alice@example.com", "carol@example.com", "hidden@example.com"]
        assert b"hidden@example.com" not in received.data
        html = received.message.get_body(preferencelist=("html",)).get_content()
        assert "<p>Incident 2314: Phishing wave: &#34;Invoice&#34; &amp; &lt;script&gt;</p>" in html
        content = result["content"]
        assert content["inputs"] == ["sender@example.com", "alice@example.com", "carol@example.com",
                                     "hidden@example.com", "[2314] Legacy"]
        assert content["message"] is None and content["success"] is True
        assert content["text"].startswith("<p>Incident 2314")
        assert set(content) == {"inputs", "message", "text", "success"}

    def test_app_config_template_file_when_no_html_input(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body_text="ignored")
        assert result["success"] is True
        html = server.messages[0].message.get_body(preferencelist=("html",)).get_content()
        assert "Custom text: Tom&#39;s" in html
        assert server.messages[0].mail_from == "soar@example.com"

    def test_attachments_by_name(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body_html="files",
                      mail_attachments="Prüfbericht ä.pdf")
        assert result["success"] is True
        names = [part.get_filename() for part in server.messages[0].message.iter_attachments()]
        assert names == ["Prüfbericht ä.pdf"]

    @pytest.mark.parametrize("inputs, expected", [
        ({"mail_to": "a@example.com", "mail_subject": None}, "mail_subject"),
        ({"mail_to": "a@example.com", "mail_incident_id": None}, "mail_incident_id"),
        ({"mail_to": "a@example.com", "mail_subject": "x\r\nBcc: v@example.net"}, "mail_subject"),
        ({"mail_to": "a@example.com\nBcc: v@example.net"}, "mail_to"),
        ({"mail_to": "a@example.com", "mail_from": "no address"}, "mail_from"),
    ])
    def test_invalid_inputs_raise(self, circuits_app, server, inputs, expected):
        with pytest.raises(FunctionRaised) as raised:
            send(circuits_app, **inputs)
        assert isinstance(raised.value.original, ValueError)
        assert expected in str(raised.value)
        assert server.messages == []

    def test_template_error_is_a_failed_v1_result(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body_html="ok\n{% if %}")
        assert result["success"] is False
        assert result["content"]["success"] is False
        assert "line 2" in result["content"]["message"] and result["reason"] == result["content"]["message"]
        assert result["content"]["text"] is None
        assert server.messages == []


class TestSendEmailPlainText:
    """Without a template the v1 text body goes out as plain text, whatever it contains."""

    def test_text_body_is_plain_even_with_markup(self):
        with SmtpTestServer() as plain_server:
            settings = load_settings({"fn_outbound_email": {"smtp_server": "127.0.0.1",
                                                            "smtp_port": str(plain_server.port),
                                                            "from_email_address": "soar@example.com"}})
            mailer = Mailer(settings, soar=None)
            mailer.send(MailRequest(incident_id=1, to="alice@example.com", subject="s",
                                    body="Use <b>bold</b> & stay", plain_text_only=True))
            message = plain_server.messages[0].message
            assert message.get_content_type() == "text/plain"
            assert message.get_content().strip() == "Use <b>bold</b> & stay"
