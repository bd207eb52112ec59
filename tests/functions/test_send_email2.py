# -*- coding: utf-8 -*-
"""send_email2 end to end: pytest-resilient-circuits, a mock SOAR, a real SMTP server on 127.0.0.1."""

import os
import tempfile
import time

import pytest
from resilient_circuits.util import get_config_data

from tests.support.function_runner import FunctionRaised, app_config, send_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import SoarMock

SMTP_PORT = free_port()
TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "templates")
SECRET_PASSWORD = "top-secret-smtp-password"

# the secrets are set (though unused) so tests can prove they never reach a template, a log or a result
config_data = app_config(
    SMTP_PORT, smtp_ssl_mode="None", from_email_address="SOAR Notifier <soar@example.com>",
    smtp_password=SECRET_PASSWORD, client_secret=SECRET_PASSWORD,
    templates={label: os.path.join(TEMPLATES, file_name) for label, file_name in (
        ("fields", "incident_fields.jinja"), ("html", "incident_html.jinja"), ("related", "related.jinja"),
        ("broken", "broken.jinja"), ("missing_file", "does_not_exist.jinja"))})

resilient_mock = SoarMock


SMTP_SERVER_OPTIONS = {"refuse": ["nobody@example.org"]}


def send(circuits_app, **inputs):
    return send_function(circuits_app, "send_email2", **inputs)


def only_message(server):
    assert len(server.messages) == 1, [m.rcpt_tos for m in server.messages]
    return server.messages[0]




class TestSendEmail2:

    def test_config_section_is_complete(self):
        text = get_config_data("fn_outbound_email")
        for key in ("smtp_server", "smtp_port", "smtp_user", "smtp_password", "from_email_address",
                    "smtp_conn_timeout", "smtp_ssl_mode", "smtp_ssl_cafile", "template_file",
                    "enable_email_conversations", "client_id", "client_secret", "scope", "token_url",
                    "refresh_token", "auth_url", "p12_signing_encrypting_cert", "p12_signing_encrypting_cert_password",
                    "date_format", "max_message_size", "smtp_retries", "[fn_outbound_email:templates]"):
            assert key in text

    def test_plain_body_is_delivered_with_generated_headers(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_subject="Hello", mail_body="Plain body")
        assert result["success"] is True, result["reason"]
        received = only_message(server)
        message = received.message
        assert received.mail_from == "soar@example.com"
        assert received.rcpt_tos == ["alice@example.com"]
        assert message["From"] == "SOAR Notifier <soar@example.com>"
        assert message["Subject"] == "Hello"
        assert message["Date"]
        assert message["MIME-Version"] == "1.0"
        assert message.get_content_type() == "text/plain"
        assert message.get_content().strip() == "Plain body"
        assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@example.com>")
        assert message["Importance"] is None and message["X-Priority"] is None
        content = result["content"]
        assert content == {
            "mail_body": "Plain body",
            "mail_from": "SOAR Notifier <soar@example.com>",
            "message_id": message["Message-ID"],
            "recipients": {"accepted": ["alice@example.com"], "refused": {}},
            "attachments": {"sent": [], "missing": []},
            "signed": False,
            "encrypted": False,
        }
        assert result["inputs"]["mail_to"] == "alice@example.com"

    def test_html_body_is_multipart_alternative_with_text_part(self, circuits_app, server):
        html = "<h1>Alert</h1><p>See <a href='https://soar.example/x'>the incident</a> &amp; act.</p>"
        result = send(circuits_app, mail_to="alice@example.com", mail_body=html)
        assert result["success"] is True
        message = only_message(server).message
        assert message.get_content_type() == "multipart/alternative"
        plain = message.get_body(preferencelist=("plain",)).get_content()
        rich = message.get_body(preferencelist=("html",)).get_content()
        assert "<h1>Alert</h1>" in rich
        assert "Alert" in plain and "<h1>" not in plain
        assert "the incident <https://soar.example/x>" in plain and "& act." in plain

    def test_addresses_semicolons_display_names_and_bcc_never_in_headers(self, circuits_app, server):
        result = send(circuits_app, mail_to='"Doe, Jane" <jane@example.com>; bob@example.com',
                      mail_cc="Jörg Müller <joerg@example.com>, BOB@example.com",
                      mail_bcc="hidden@example.net, jane@example.com",
                      mail_from="Ünïcode Sender <sender@example.com>",
                      mail_subject="Grüße – ✓ status", mail_body="x")
        assert result["success"] is True, result["reason"]
        received = only_message(server)
        assert received.rcpt_tos == ["jane@example.com", "bob@example.com", "joerg@example.com",
                                     "hidden@example.net"]
        assert b"hidden@example.net" not in received.data
        assert b"Bcc" not in received.data and b"bcc" not in received.data.lower().split(b"\r\n\r\n")[0]
        message = received.message
        assert message["Bcc"] is None
        assert message["Subject"] == "Grüße – ✓ status"
        assert message["From"].addresses[0].display_name == "Ünïcode Sender"
        assert "Jörg Müller" in str(message["Cc"])
        assert message["To"].addresses[0].display_name == "Doe, Jane"
        raw_headers = received.data.split(b"\r\n\r\n")[0]
        assert raw_headers.isascii()       # encoded words, not raw UTF-8
        assert result["content"]["recipients"]["accepted"] == received.rcpt_tos

    def test_idn_domain_travels_as_punycode(self, circuits_app, server):
        result = send(circuits_app, mail_to="info@bücher.example", mail_body="x")
        assert result["success"] is True
        assert only_message(server).rcpt_tos == ["info@xn--bcher-kva.example"]

    @pytest.mark.parametrize("importance, priority", [("high", "1"), ("normal", "3"), ("low", "5"),
                                                      ({"name": "high"}, "1")])
    def test_importance_and_x_priority(self, circuits_app, server, importance, priority):
        result = send(circuits_app, mail_to="alice@example.com", mail_body="x", mail_importance=importance)
        assert result["success"] is True
        message = only_message(server).message
        expected = importance["name"] if isinstance(importance, dict) else importance
        assert message["Importance"] == expected
        assert message["X-Priority"].split()[0] == priority

    def test_message_id_and_in_reply_to(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body="x",
                      mail_message_id="abc.123@soar.example", mail_in_reply_to="<orig.1@mail.example>")
        assert result["success"] is True
        message = only_message(server).message
        assert message["Message-ID"] == "<abc.123@soar.example>"
        assert message["In-Reply-To"] == "<orig.1@mail.example>"
        assert message["References"] == "<orig.1@mail.example>"
        assert result["content"]["message_id"] == "<abc.123@soar.example>"

    def test_template_label_renders_every_field_kind(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_subject="Subj", mail_template_label="fields")
        assert result["success"] is True, result["reason"]
        message = only_message(server).message
        assert message.get_content_type() == "text/plain"
        text = message.get_content()
        assert 'Incident 2314: Phishing wave: "Invoice" & <script>' in text   # text mail: not escaped
        assert "Severity: Medium" in text
        assert "Status: Active" in text
        assert "Types: Phishing, Malware" in text
        assert "Created: 2022-08-05T14:03:23.441000" in text
        assert "Confirmed: Yes" in text
        assert "Custom text: Tom's \"quoted\" & <tagged> text" in text
        assert "Custom select: Beta" in text
        assert "Custom multi: Red, Green" in text
        assert "Custom number: 42" in text
        assert "Custom notes: line one\nline two" in text
        assert "Custom date: 2022-08-05T00:00:00" in text
        assert "Unknown: None" in text
        assert "Subject input: Subj" in text
        # the result carries the body that was sent (the received text part ends with the line break it adds)
        assert result["content"]["mail_body"].strip()
        assert result["content"]["mail_body"].rstrip("\n") == text.rstrip("\n")

    def test_html_template_escapes_incident_values_and_sanitizes_rich_text(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_template_label="html")
        assert result["success"] is True, result["reason"]
        html = only_message(server).message.get_body(preferencelist=("html",)).get_content()
        assert "Phishing wave: &#34;Invoice&#34; &amp; &lt;script&gt;" in html
        assert "Tom&#39;s &#34;quoted&#34; &amp; &lt;tagged&gt; text" in html
        assert "<b>invoice</b>" in html and "<script>" not in html and "alert(1)" not in html
        assert 'href="https://soar.example.invalid/#incidents/2314?orgId=201"' in html

    def test_inline_template_merged_with_body(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body="> original message",
                      mail_inline_template="Re: {{ incident.id }} {{ mail.mail_to }}", mail_merge_body=True)
        assert result["success"] is True
        assert only_message(server).message.get_content().strip() == \
            "Re: 2314 alice@example.com\n> original message"
        assert result["content"]["mail_body"] == "Re: 2314 alice@example.com\n> original message"

    def test_inline_template_without_merge_ignores_body(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body="ignored",
                      mail_inline_template="only {{ incident.id }}", mail_merge_body=False)
        assert result["content"]["mail_body"] == "only 2314"

    def test_related_data_helpers_and_lazy_fetching(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_template_label="related")
        assert result["success"] is True, result["reason"]
        text = only_message(server).message.get_content()
        assert "artifact 203.0.113.7 (sender relay)" in text
        assert "artifact billing@evil.example (spoofed sender)" in text
        assert text.index("note <p>Parent note</p>") < text.index("note Child note") < text.index("note Second note")
        assert "top Child note" not in text and "top Second note" in text
        assert "table evil.example, <b>x</b>.example" in text
        assert "rows 2" in text
        assert "task https://soar.example.invalid/#incidents/2314?orgId=201&taskId=7001&tabName=details" in text
        assert "list ['a', 'b', 'c']" in text
        assert "regex abc-N" in text
        assert "ts 1970-01-01T00:00:00" in text
        paths = [path for _, path in SoarMock.calls]
        assert any("/artifacts/query_paged" in path for path in paths)
        assert any("/comments/query" in path for path in paths)

    def test_plain_template_fetches_no_artifacts_or_notes_and_types_are_cached(self, circuits_app, server):
        send(circuits_app, mail_to="alice@example.com", mail_template_label="fields")
        SoarMock.calls.clear()
        result = send(circuits_app, mail_to="alice@example.com", mail_template_label="fields")
        assert result["success"] is True
        rest_calls = [call for call in SoarMock.calls if "/rest/session" not in call[1]]
        assert rest_calls == [("GET", "/incidents/2314?handle_format=names")]

    def test_attachments_all(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body="files", mail_attachments="*")
        assert result["success"] is True, result["reason"]
        message = only_message(server).message
        attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
        names = [part.get_filename() for part in message.iter_attachments()]
        assert names == ["report.txt", "report.txt", "Prüfbericht ä.pdf", "x"]
        assert attachments["Prüfbericht ä.pdf"] == b"%PDF-1.4 fake\n"
        assert sorted(part.get_payload(decode=True) for part in message.iter_attachments()
                      if part.get_filename() == "report.txt") == [b"incident report\n", b"task report\n"]
        assert b"filename*=utf-8''Pr%C3%BCfbericht%20%C3%A4.pdf" in only_message(server).data
        assert [part.get_content_type() for part in message.iter_attachments()][2] == "application/pdf"
        assert result["content"]["attachments"] == {"sent": ["report.txt", "report.txt", "Prüfbericht ä.pdf", "../x"],
                                                    "missing": []}

    def test_attachments_by_name_reports_missing(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_body="files",
                      mail_attachments="report.txt, nothere.pdf ,../x")
        assert result["success"] is True
        names = [part.get_filename() for part in only_message(server).message.iter_attachments()]
        assert names == ["report.txt", "report.txt", "x"]
        assert result["content"]["attachments"]["missing"] == ["nothere.pdf"]

    def test_one_refused_recipient_is_reported_and_the_rest_get_the_mail(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com, nobody@example.org", mail_body="x")
        assert result["success"] is True
        assert only_message(server).rcpt_tos == ["alice@example.com"]
        recipients = result["content"]["recipients"]
        assert recipients["accepted"] == ["alice@example.com"]
        assert recipients["refused"]["nobody@example.org"].startswith("550 5.1.1")

    def test_every_recipient_refused_fails(self, circuits_app, server):
        result = send(circuits_app, mail_to="nobody@example.org", mail_body="x")
        assert result["success"] is False
        assert "refused every recipient" in result["reason"] and "550" in result["reason"]
        assert server.messages == []
        assert result["content"]["mail_body"] is None

    # --- errors ---------------------------------------------------------------------------------------

    @pytest.mark.parametrize("inputs, expected", [
        ({"mail_body": "x"}, "mail_to"),
        ({"mail_to": "a@example.com", "mail_body": "x", "mail_incident_id": None}, "mail_incident_id"),
        ({"mail_to": "a@example.com", "mail_inline_template": "x", "mail_template_label": "fields"}, "not both"),
        ({"mail_to": "a@example.com", "mail_body": "x", "mail_incident_id": "abc"}, "number"),
        ({"mail_to": "not-an-address", "mail_body": "x"}, "not-an-address"),
        ({"mail_to": "a@example.com, b@", "mail_body": "x"}, "b@"),
        ({"mail_to": "a@example.com", "mail_cc": "c@@example.com", "mail_body": "x"}, "mail_cc"),
        ({"mail_to": "a@example.com", "mail_bcc": "bad address@example.com", "mail_body": "x"}, "mail_bcc"),
        ({"mail_to": "a@example.com", "mail_from": "nobody", "mail_body": "x"}, "mail_from"),
        ({"mail_to": "a@example.com", "mail_body": "x", "mail_importance": "urgent"}, "mail_importance"),
        ({"mail_to": "a@example.com", "mail_body": "x", "mail_message_id": "no-at-sign"}, "mail_message_id"),
        ({"mail_to": "a@example.com", "mail_body": "x", "mail_in_reply_to": "<a b@c>"}, "mail_in_reply_to"),
    ])
    def test_invalid_inputs_raise_a_clear_error_and_send_nothing(self, circuits_app, server, inputs, expected):
        with pytest.raises(FunctionRaised) as raised:
            send(circuits_app, **inputs)
        assert isinstance(raised.value.original, ValueError)
        assert expected in str(raised.value)
        assert server.messages == []

    @pytest.mark.parametrize("input_name", ["mail_subject", "mail_to", "mail_cc", "mail_bcc", "mail_from",
                                            "mail_message_id", "mail_in_reply_to"])
    @pytest.mark.parametrize("payload", ["x@example.com\r\nBcc: victim@example.net",
                                         "x@example.com\nX-Injected: yes", "x@example.com\rX: y",
                                         "x@example.com\x00"])
    def test_header_injection_is_refused_for_every_header_input(self, circuits_app, server, input_name, payload):
        inputs = {"mail_to": "alice@example.com", "mail_body": "x", input_name: payload}
        with pytest.raises(FunctionRaised) as raised:
            send(circuits_app, **inputs)
        assert input_name in str(raised.value)
        assert "control character" in str(raised.value)
        assert server.messages == []

    def test_no_body_and_no_template_is_a_failed_result(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_subject="empty")
        assert result["success"] is False
        assert result["reason"] == "No email body or template specified"
        assert result["content"]["mail_body"] is None
        assert server.messages == []

    def test_unknown_label_names_the_label(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_template_label="no_such_label")
        assert result["success"] is False
        assert "no_such_label" in result["reason"] and "fields" in result["reason"]
        assert server.messages == []

    def test_label_whose_file_is_missing(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_template_label="missing_file")
        assert result["success"] is False
        assert "does_not_exist.jinja" in result["reason"]

    def test_template_syntax_error_reports_name_and_line(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_template_label="broken")
        assert result["success"] is False
        assert "broken.jinja" in result["reason"] and "line 3" in result["reason"]
        inline = send(circuits_app, mail_to="alice@example.com", mail_inline_template="ok\n{{ x + }}")
        assert inline["success"] is False and "line 2" in inline["reason"]
        assert server.messages == []

    def test_template_runtime_error_reports_line(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com", mail_inline_template="a\nb\n{{ 1 // 0 }}")
        assert result["success"] is False
        assert "line 3" in result["reason"] and "ZeroDivisionError" in result["reason"]

    @pytest.mark.parametrize("template", [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ incident.__class__.__init__.__globals__ }}",
        "{{ template_helper.__class__.__init__.__globals__['os'] }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ])
    def test_sandbox_blocks_python_internals(self, circuits_app, server, template):
        result = send(circuits_app, mail_to="alice@example.com", mail_inline_template=template)
        assert result["success"] is False
        assert "sandbox" in result["reason"]
        assert server.messages == []

    @pytest.mark.parametrize("probe", [
        "template_helper.component.opts", "template_helper._soar", "template_helper._soar._rest",
        "template_helper._soar._rest.base_url", "template_helper._date_format", "template_helper.__dict__",
        "template_helper.get_incident_value.__self__", "template_helper.get_incident_value.__func__",
        "template_helper.opts", "template_helper.options", "template_helper.rc", "template_helper._soar._rest.__dict__",
        "template_helper.__init__", "template_helper.__class__", "template_helper | attr('_soar')",
        "template_helper.get_incident_value.__self__._soar", "component", "opts", "rest_client",
    ])
    def test_template_helper_reaches_no_config_client_or_secret(self, circuits_app, server, probe):
        # each probe on its own: one probe that fails must not hide what another one would print
        result = send(circuits_app, mail_to="alice@example.com", mail_inline_template="[{{ %s }}]" % probe)
        if result["success"]:
            body = result["content"]["mail_body"]
            assert body == "[]", body          # renders empty ...
            assert len(server.messages) == 1
        else:                                  # ... or fails, and the reason shows nothing either
            body = result["reason"]
            assert result["content"]["mail_body"] is None and server.messages == []
        for leak in ("SoarClient", SECRET_PASSWORD, "not-a-real-password", "smtp_password"):
            assert leak not in body

    def test_no_rendered_output_holds_the_client_the_opts_or_a_secret(self, circuits_app, server):
        template = "{{ mail }}|{{ incident }}|{{ artifact }}|{{ note }}"
        result = send(circuits_app, mail_to="alice@example.com", mail_inline_template=template)
        assert result["success"] is True, result["reason"]
        body = result["content"]["mail_body"]
        assert "alice@example.com" in body         # the probe rendered the inputs, so it could have leaked
        for leak in ("SoarClient", "opts", SECRET_PASSWORD, "not-a-real-password"):
            assert leak not in body
        assert SECRET_PASSWORD.encode() not in only_message(server).data

    def test_no_secret_in_logs(self, circuits_app, server, caplog):
        caplog.set_level("DEBUG")
        send(circuits_app, mail_to="alice@example.com", mail_body="x")
        send(circuits_app, mail_to="nobody@example.org", mail_body="x")
        assert SECRET_PASSWORD not in caplog.text

    def test_no_temp_files_outlive_a_send(self, circuits_app, server, monkeypatch):
        scratch = tempfile.mkdtemp(prefix="outbound-email-tmp-")
        monkeypatch.setattr(tempfile, "tempdir", scratch)
        monkeypatch.setenv("TMPDIR", scratch)
        try:
            result = send(circuits_app, mail_to="alice@example.com", mail_body="files", mail_attachments="*",
                          mail_template_label="related")
            assert result["success"] is True
            assert os.listdir(scratch) == []
        finally:
            os.rmdir(scratch)

    def test_server_down_is_a_failed_result_with_reason(self, circuits_app, server):
        server.stop()
        try:
            result = send(circuits_app, mail_to="alice@example.com", mail_body="x")
        finally:
            server.start()
        assert result["success"] is False
        assert "refused the connection" in result["reason"] and str(SMTP_PORT) in result["reason"]
        assert result["content"]["mail_body"] is None


class TestRichTextFieldValues:
    """get_incident_value gives SOAR rich text as plain text in a text template and as sanitized HTML in an HTML
    one (not its raw markup: tags in a text mail, escaped tags in an HTML one)."""

    def test_text_template_gets_plain_text(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com",
                      mail_inline_template="Description: {{ template_helper.get_incident_value(incident, 'description') }}")
        assert result["success"] is True, result["reason"]
        text = only_message(server).message.get_content()
        assert "Description: Users got invoice mails from O'Brien & Co." in text
        for markup in ("<p>", "<b>", "&amp;", "&#39;", "alert(1)"):
            assert markup not in text

    def test_html_template_gets_sanitized_html(self, circuits_app, server):
        result = send(circuits_app, mail_to="alice@example.com",
                      mail_inline_template="<div>{{ template_helper.get_incident_value(incident, 'description') }}</div>")
        assert result["success"] is True, result["reason"]
        html = only_message(server).message.get_body(preferencelist=("html",)).get_content()
        assert "<b>invoice</b>" in html and "<p>" in html
        for bad in ("&lt;p&gt;", "&lt;b&gt;", "<script", "alert(1)"):
            assert bad not in html


def test_an_app_config_reload_closes_the_idle_smtp_sessions(circuits_app, server):
    from resilient_circuits.app_restartable import reload

    from fn_outbound_email.lib.delivery.smtp.pool import POOL
    result = send_function(circuits_app, "send_email2", {"mail_to": "alice@example.com"}, mail_body="kept")
    assert result["success"] is True and POOL.idle_count() == 1
    circuits_app.manager.fire(reload(opts=circuits_app.app.opts))
    deadline = time.monotonic() + 10
    while POOL.idle_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert POOL.idle_count() == 0
