# -*- coding: utf-8 -*-
"""Drop-in: an app.config written for IBM's original app works unchanged.

The original's generated [fn_outbound_email] section leaves smtp_user, smtp_password, from_email_address
and smtp_ssl_cafile blank and names its template as data/example_send_email.jinja; blank means unset and
that path is our shipped template. Our own generated section (util/config.py) sets the template, asks for
STARTTLS and lets the port follow smtp_ssl_mode (587).
"""

import configparser
import os
import shutil
import subprocess
import sys

import pytest

from fn_outbound_email.lib.errors import DeliveryError
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import PACKAGE_DIR, load_settings, resolve_template_path
from fn_outbound_email.util.config import config_section_data
from tests.support.function_runner import FunctionRaised, call_function
from tests.support.smtp_server import SmtpTestServer, free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

SMTP_PORT = free_port()
SHIPPED_TEMPLATE = os.path.join(PACKAGE_DIR, "data", "templates", "example_send_email.jinja")


def original_section(server="xxx.xxx.xxx.xxx", port=25):
    """The keys and values of the [fn_outbound_email] section the original app generates."""
    return "\n".join([
        "[fn_outbound_email]",
        "smtp_server={0}".format(server),
        "smtp_user=",
        "smtp_password=",
        "from_email_address=",
        "smtp_port={0}".format(port),
        "smtp_conn_timeout=20",
        "smtp_ssl_mode=None",
        "smtp_ssl_cafile=",
        "template_file=data/example_send_email.jinja",
    ]) + "\n"


def as_opts(config_text, **overrides):
    """The opts resilient-circuits hands the app for this app.config text: every section, values as strings."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(config_text)
    opts = {name: dict(parser.items(name)) for name in parser.sections()}
    opts["fn_outbound_email"].update(overrides)
    return opts


# the functions run with the original's section, only pointed at the test's SMTP server
config_data = original_section("127.0.0.1", SMTP_PORT)

resilient_mock = SoarMock


# --- the original's section -----------------------------------------------------------------------------------
def test_blank_values_of_the_original_section_mean_unset():
    settings = load_settings(as_opts(original_section()))
    assert settings.smtp_user is None and settings.smtp_password is None     # no login, and no "password missing"
    assert settings.from_address is None and settings.default_sender is None
    assert settings.ssl_verify is True                                        # unset: system CA store
    assert settings.smtp_port == 25 and settings.ssl_mode == "none" and settings.timeout == 20


def test_the_original_template_path_is_the_shipped_template():
    settings = load_settings(as_opts(original_section()))
    assert settings.template_file == SHIPPED_TEMPLATE and os.path.isfile(settings.template_file)


@pytest.mark.parametrize("configured, expected", [
    ("data/example_send_email.jinja", SHIPPED_TEMPLATE),
    ("./data/example_send_email.jinja", SHIPPED_TEMPLATE),
    ("data/templates/example_send_email.jinja", SHIPPED_TEMPLATE),
    ("/srv/templates/data/example_send_email.jinja", "/srv/templates/data/example_send_email.jinja"),
    ("data/my_template.jinja", os.path.join(PACKAGE_DIR, "data", "my_template.jinja")),
])
def test_template_paths(configured, expected):
    assert resolve_template_path(configured) == expected


def test_a_template_at_the_original_path_wins_over_the_mapping(tmp_path, monkeypatch):
    package = tmp_path / "fn_outbound_email"
    (package / "data").mkdir(parents=True)
    (package / "data" / "example_send_email.jinja").write_text("own copy", encoding="utf-8")
    monkeypatch.setattr("fn_outbound_email.lib.settings.PACKAGE_DIR", str(package))
    assert resolve_template_path("data/example_send_email.jinja") == str(package / "data" / "example_send_email.jinja")


def test_the_original_templates_section_path_is_mapped_too():
    opts = as_opts(original_section() + "\n[fn_outbound_email:templates]\nsummary=data/example_send_email.jinja\n")
    assert load_settings(opts).template_for_label("summary") == SHIPPED_TEMPLATE


class TestSendingWithTheOriginalSection:

    def test_send_email_without_a_body_renders_the_template_file(self, circuits_app, server):
        result = call_function(circuits_app, "send_email", {
            "mail_incident_id": INCIDENT_ID, "mail_subject": "[2314] drop-in", "mail_from": "soc@example.com",
            "mail_to": "alice@example.com"})
        assert result["success"] is True, result["reason"]
        received = server.messages[0]
        assert received.mail_from == "soc@example.com" and received.rcpt_tos == ["alice@example.com"]
        assert received.auth_user is None                       # blank smtp_user: no AUTH
        html = received.message.get_body(preferencelist=("html",)).get_content()
        assert "Incident 2314: Phishing wave" in html
        assert 'href="https://soar.example.invalid/#incidents/2314?orgId=201"' in html
        assert "Incident 2314: Phishing wave" in result["content"]["text"]

    def test_the_text_playbook_sends_its_text_although_template_file_is_set(self, circuits_app, server):
        # the inputs the exported "Send Incident Email Text" playbook's pre-processing script sets
        import json
        from fn_outbound_email.util.customizations import build
        from tests.soar.test_customizations import SoarObject, run_pre_processing
        with open(build.EXPORT_RES, encoding="utf-8") as export_file:
            export = json.load(export_file)
        inputs = run_pre_processing(export, "example_send_incident_email_text",
                                    {"mail_to": "alice@example.com", "mail_from": "soc@example.com"},
                                    incident=SoarObject(id=INCIDENT_ID, name="Lost <laptop> & {{ 7*7 }}",
                                                        severity_code="High", plan_status="A",
                                                        description="<p>Left on a train</p>"))
        result = call_function(circuits_app, "send_email", {
            name: value for name, value in vars(inputs).items() if value is not None})
        assert result["success"] is True, result["reason"]
        message = server.messages[0].message
        assert message.get_content_type() == "text/plain"
        text = message.get_content().replace("\r\n", "\n")
        assert text.rstrip("\n") == inputs.mail_body_text.rstrip("\n")
        assert text.startswith("Incident 2314: Lost <laptop> & {{ 7*7 }}\nSeverity: High\nStatus: Active\n")
        assert "Left on a train" in text and "INCIDENT DETAILS" not in text

    def test_send_email2_without_mail_from_says_there_is_no_sender(self, circuits_app, server):
        # blank from_email_address and smtp_user: nothing to fall back on
        with pytest.raises(FunctionRaised) as raised:
            call_function(circuits_app, "send_email2", {"mail_incident_id": INCIDENT_ID, "mail_to": "a@example.com",
                                                        "mail_body": "x"})
        assert "No sender" in str(raised.value) and "from_email_address" in str(raised.value)
        assert server.messages == []


@pytest.fixture(scope="module")
def tls_files(tls_pki):
    """The session's test PKI (conftest tls_pki): its CA file and the server context for localhost."""
    return {"ca": tls_pki.ca_file, "context": tls_pki.context}


def starttls_send(tls_files, **overrides):
    """A send with the original's section switched to STARTTLS (smtp_ssl_cafile= still blank unless overridden)."""
    with SmtpTestServer(tls_context=tls_files["context"], require_starttls=True) as server:
        overrides = dict({"smtp_ssl_mode": "starttls", "from_email_address": "soar@example.com",
                          "smtp_conn_timeout": "5"}, **overrides)
        settings = load_settings(as_opts(original_section("127.0.0.1", server.port), **overrides))
        Mailer(settings, soar=None).send(MailRequest(incident_id=1, to="alice@example.com", subject="s", body="b"))
        return server.messages


def test_blank_smtp_ssl_cafile_verifies_with_the_system_ca_store(tls_files):
    # not "no verification" (false) and not a path: the test CA is not in the system store, so the server is
    # refused before anything is sent, with the key to set named
    with pytest.raises(DeliveryError) as raised:
        starttls_send(tls_files)
    assert "not trusted" in str(raised.value) and "smtp_ssl_cafile" in str(raised.value)


def test_the_same_section_delivers_once_smtp_ssl_cafile_names_the_ca(tls_files):
    messages = starttls_send(tls_files, smtp_ssl_cafile=tls_files["ca"])
    assert len(messages) == 1 and messages[0].tls is True


# --- our generated section --------------------------------------------------------------------------------------
def generated_opts(**overrides):
    return as_opts(config_section_data(), smtp_server="smtp.example.com", **overrides)


def test_generated_section_sets_the_shipped_template_like_the_original():
    section = as_opts(config_section_data())["fn_outbound_email"]
    assert section["template_file"] == "data/templates/example_send_email.jinja"
    assert load_settings(generated_opts()).template_file == SHIPPED_TEMPLATE


@pytest.mark.parametrize("mode, port", [("None", 25), ("starttls", 587), ("ssl", 465)])
def test_generated_section_lets_the_port_follow_smtp_ssl_mode(mode, port):
    assert "smtp_port" not in as_opts(config_section_data())["fn_outbound_email"]
    assert load_settings(generated_opts(smtp_ssl_mode=mode)).smtp_port == port


def test_generated_section_uses_starttls_on_port_587_as_the_originals_does():
    assert as_opts(config_section_data())["fn_outbound_email"]["smtp_ssl_mode"] == "starttls"
    settings = load_settings(generated_opts())
    assert settings.ssl_mode == "starttls" and settings.smtp_port == 587


def test_generated_section_is_valid_as_it_is():
    settings = load_settings(generated_opts())
    assert settings.smtp_user is None and settings.ssl_verify is True and settings.templates == {}


# --- resilient-circuits config -u ------------------------------------------------------------------------------
def resilient_circuits(*args, cwd):
    command = shutil.which("resilient-circuits", path=os.path.dirname(sys.executable))
    assert command, "resilient-circuits is not installed next to this Python"
    return subprocess.run([command] + list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def test_config_update_adds_both_sections_to_an_app_config_without_them(tmp_path):
    app_config = tmp_path / "app.config"
    app_config.write_text("[resilient]\nhost=soar.example.com\n", encoding="utf-8")
    resilient_circuits("config", "-u", str(app_config), "-l", "fn_outbound_email", cwd=str(tmp_path))
    sections = configparser.ConfigParser(interpolation=None)
    sections.read(str(app_config))
    assert {"fn_outbound_email", "fn_outbound_email:templates"} <= set(sections.sections())


def test_config_update_leaves_an_existing_section_alone(tmp_path):
    # resilient-circuits looks only at the first section our generator returns: as [fn_outbound_email] exists
    # it adds nothing, not [fn_outbound_email:templates] either (README: Upgrading says to paste that section)
    app_config = tmp_path / "app.config"
    original = "[resilient]\nhost=soar.example.com\n\n" + original_section()
    app_config.write_text(original, encoding="utf-8")
    done = resilient_circuits("config", "-u", str(app_config), "-l", "fn_outbound_email", cwd=str(tmp_path))
    assert "No updates" in done.stdout + done.stderr
    assert app_config.read_text(encoding="utf-8") == original
