# -*- coding: utf-8 -*-
"""`outbound-email demo` and `outbound-email render`.

The demo runs end to end in a subprocess, in an empty folder with its own
empty TMPDIR: real SMTP to its embedded receiver, the .eml it saves, and (with
--sign) a signature that openssl verifies. render runs in-process against the
bundled sample, user JSON files, an app.config, and a live SOAR stand-in (the
resilient client with the test suite's SOAR mock).
"""

import json
import os
import shutil
import smtplib
import subprocess
import sys

import pytest

from fn_outbound_email.cli.local_smtp import LocalSmtpServer
from fn_outbound_email.cli.main import main
from fn_outbound_email.cli.offline_soar import SAMPLE_DIR
from fn_outbound_email.lib.soar.client import clear_field_cache
from tests.support.smtp_server import ReceivedMessage as ParsedMessage

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_INCIDENT_NAME = "Phishing: fake invoice mails to the finance team"
SAMPLE_ATTACHMENT = "original-mail-headers.txt"


# --- helpers -------------------------------------------------------------------------------------------------
@pytest.fixture
def folders(tmp_path):
    """An empty working folder and an empty TMPDIR for one CLI run."""
    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    return work, temp


def run_cli(arguments, cwd, tmpdir):
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "fn_outbound_email.cli.main"] + arguments, cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=60)


def only_file(folder, suffix):
    found = [name for name in os.listdir(folder) if name.endswith(suffix)]
    assert len(found) == 1, os.listdir(folder)
    return os.path.join(folder, found[0])


def read_eml(path):
    with open(path, "rb") as handle:
        data = handle.read()
    return data, ParsedMessage("", [], data).message


def parts_by_type(message):
    return {part.get_content_type(): part for part in message.walk() if not part.is_multipart()}


@pytest.fixture
def render(tmp_path, capsys):
    """Run `outbound-email render ...` in-process; returns (exit code, stdout, stderr, out folder)."""
    out = tmp_path / "preview"

    def run(*arguments):
        clear_field_cache()
        code = main(["render", "--out", str(out)] + list(arguments))
        captured = capsys.readouterr()
        return code, captured.out, captured.err, out
    return run


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- demo --------------------------------------------------------------------------------------------------------
DEMO_TRANSPORTS = pytest.mark.parametrize("transport", ["smtp", "graph"])


@DEMO_TRANSPORTS
def test_demo_sends_the_sample_incident_and_saves_what_the_server_received(folders, transport):
    work, temp = folders
    result = run_cli(["demo", "--transport", transport], work, temp)

    assert result.returncode == 0, result.stderr
    eml_path = only_file(work / "outbox", ".eml")
    assert os.path.relpath(eml_path, str(work)) in result.stdout
    data, message = read_eml(eml_path)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")     # saved as received: CRLF lines

    assert message["Subject"].strip() == "[SOAR] Incident 2095: " + SAMPLE_INCIDENT_NAME
    assert "soc@example.com" in message["To"] and "alex.analyst@example.com" in message["Cc"]
    assert message["Bcc"] is None                                           # Bcc only in the envelope
    parts = parts_by_type(message)
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert SAMPLE_INCIDENT_NAME in html and SAMPLE_INCIDENT_NAME in text
    # the template's artifacts and notes sections are on in the demo, child note included
    assert "accounts@invoices-example.net" in html and "Please also notify the finance team lead" in html
    attachments = [part for part in message.iter_attachments()]
    assert [part.get_filename() for part in attachments] == [SAMPLE_ATTACHMENT]
    with open(os.path.join(SAMPLE_DIR, "attachments", SAMPLE_ATTACHMENT), "rb") as handle:
        assert attachments[0].get_payload(decode=True) == handle.read()
    assert {"text/plain", "text/html"} <= set(parts)

    summary = result.stdout
    for expected in ("Subject:", SAMPLE_INCIDENT_NAME, "audit@example.com", "multipart/alternative", "text/html",
                     SAMPLE_ATTACHMENT, "Size:"):
        assert expected in summary
    assert ("Microsoft Graph endpoint" in summary) == (transport == "graph")
    assert os.listdir(str(temp)) == []                                       # no temp files left behind


def test_demo_with_own_template_incident_and_out_folder(folders, tmp_path):
    work, temp = folders
    incident = json.load(open(os.path.join(SAMPLE_DIR, "incident.json"), encoding="utf-8"))
    incident.update(id=777, name="Lost laptop at the airport")
    incident_file = write(tmp_path / "incident.json", json.dumps(incident))
    template_file = write(tmp_path / "short.jinja", "Incident {{ incident.id }}: {{ incident.name }} & co\n")

    result = run_cli(["demo", "--incident", incident_file, "--template", template_file, "--out", "mails"],
                     work, temp)

    assert result.returncode == 0, result.stderr
    _, message = read_eml(only_file(work / "mails", ".eml"))
    assert "Incident 777: Lost laptop at the airport" in message["Subject"]
    assert message.get_body(preferencelist=("html",)) is None                   # a text template: no HTML part
    assert message.get_body().get_content() == "Incident 777: Lost laptop at the airport & co\n"
    assert not os.path.exists(str(work / "outbox"))



def test_demo_mail_reads_like_an_incident_notice_in_html_and_text(tmp_path, capsys, monkeypatch):
    from bs4 import BeautifulSoup       # an independent HTML parser: what a reader of the HTML part sees
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0, capsys.readouterr().err
    data, message = read_eml(only_file(tmp_path / "outbox", ".eml"))
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()

    link = "https://soar.example.com/#incidents/2095?orgId=201"        # no default port in the link
    assert b":443" not in data and link in text and 'href="{0}"'.format(link) in html
    # dates as a default install writes them: ISO 8601 (app.config date_format unset), as render does
    for line in ("Severity: High", "Status: Active", "Type: Phishing, Malware", "Created: 2024-08-01T06:40:00",
                 "Email Sender: accounts@invoices-example.net (Look-alike sender domain)",
                 "Alex Analyst wrote on 2024-08-01T06:50:00:", "Sam Lead replied on 2024-08-01T07:00:00:"):
        assert "\n" + line + "\n" in text
    # the reply follows its parent note, and the later note comes after both
    assert text.index("quarantined now") < text.index("Sam Lead replied") < text.index("Alex Analyst wrote on "
                                                                                       "2024-08-01T07:40:00")
    # the same look: every line of the text part reads the same in the HTML part
    visible = " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())
    for line in text.splitlines():
        line = " ".join(line.replace(" <{0}>".format(link), "").split())
        assert line in visible
    assert "\n\n\n" not in text and "\nSeverity: High\nStatus: Active\n" in text   # rows are lines, not paragraphs


@pytest.mark.parametrize("port, base", [(None, "https://soar.example.com"), (443, "https://soar.example.com"),
                                        ("8443", "https://soar.example.com:8443")])
def test_incident_and_task_links_show_the_port_only_when_it_is_not_the_default(port, base):
    from fn_outbound_email.lib.soar.client import SoarClient

    class Rest:
        org_id = 201
        base_url = "https://unused.example.com:443"

    soar = SoarClient(Rest(), "soar.example.com", port)
    assert soar.incident_url(7) == base + "/#incidents/7?orgId=201"
    assert soar.task_url(7, 9) == base + "/#incidents/7?orgId=201&taskId=9&tabName=details"
    assert SoarClient(Rest()).incident_url(7) == "https://unused.example.com/#incidents/7?orgId=201"

@pytest.mark.parametrize("content, expected", [
    (None, "does not exist"),
    ('{"id": 5,\n "name": }', "is not valid JSON (line 2"),
    ('{"name": "no id"}', "needs a numeric 'id'"),
])
def test_demo_bad_incident_file_is_a_clear_error(tmp_path, capsys, monkeypatch, content, expected):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "incident.json"
    if content is not None:
        write(path, content)
    assert main(["demo", "--incident", str(path)]) == 1
    assert expected in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "outbox"))


def test_demo_broken_template_exits_2_with_the_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template_file = write(tmp_path / "broken.jinja", "<p>{{ incident.name }}</p>\n<p>\n{% if %}\n")
    assert main(["demo", "--template", template_file]) == 2
    err = capsys.readouterr().err
    assert "broken.jinja" in err and "line 3" in err
    assert not os.path.exists(str(tmp_path / "outbox"))


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command line")
@DEMO_TRANSPORTS
def test_demo_sign_output_verifies_with_openssl(folders, transport):
    work, temp = folders
    result = run_cli(["demo", "--sign", "--transport", transport], work, temp)

    assert result.returncode == 0, result.stderr
    eml_path = only_file(work / "outbox", ".eml")
    ca_path = only_file(work / "outbox", ".ca.pem")
    _, message = read_eml(eml_path)
    assert message.get_content_type() == "multipart/signed"
    verify = subprocess.run(["openssl", "smime", "-verify", "-in", eml_path, "-CAfile", ca_path, "-out", os.devnull],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert "Verification successful" in verify.stderr
    # only public material next to the .eml; the p12 with the key was in TMPDIR and is gone
    assert sorted(os.listdir(str(work / "outbox"))) == sorted([os.path.basename(eml_path), os.path.basename(ca_path)])
    with open(ca_path, "rb") as handle:
        assert b"PRIVATE KEY" not in handle.read()
    assert os.listdir(str(temp)) == []
    assert "openssl smime -verify" in result.stdout


# --- the embedded SMTP receiver ---------------------------------------------------------------------------------
def test_local_smtp_server_unstuffs_dots_and_keeps_each_message():
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nnot the end\r\n"
    with LocalSmtpServer() as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.sendmail("a@example.com", ["b@example.com", "c@example.com"], body)
            client.sendmail("a@example.com", ["d@example.com"], b"Subject: second\r\n\r\nx\r\n")
            assert client.noop()[0] == 250
            assert client.rset()[0] == 250
            assert client.docmd("RCPT TO:<e@example.com>")[0] == 503      # no MAIL first
            assert client.docmd("FOO")[0] == 500                             # aiosmtpd: not recognised
        messages = server.messages
    assert [(m.mail_from, m.rcpt_tos) for m in messages] == [
        ("a@example.com", ["b@example.com", "c@example.com"]), ("a@example.com", ["d@example.com"])]
    assert messages[0].data == body


# --- render ------------------------------------------------------------------------------------------------------
def test_render_shipped_template_against_the_bundled_sample(render):
    code, out, err, folder = render()
    assert code == 0, err
    html = (folder / "preview.html").read_text(encoding="utf-8")
    text = (folder / "preview.txt").read_text(encoding="utf-8")
    assert "Incident 2095: " + SAMPLE_INCIDENT_NAME in html and SAMPLE_INCIDENT_NAME in text
    assert "High" in text and "https://soar.example.com/#incidents/2095?orgId=201" in text
    assert "Artifacts" not in html                       # the template's switches default to off ...
    assert "preview.html" in out and "preview.txt" in out


def test_render_set_turns_template_switches_on(render):
    code, _, err, folder = render("--set", "show_artifacts=true", "--set", "show_notes=true")
    assert code == 0, err
    html = (folder / "preview.html").read_text(encoding="utf-8")
    assert "203.0.113.57" in html and "Please also notify the finance team lead" in html   # ... and on here


def test_render_text_template_writes_only_text(render, tmp_path):
    source = ("{{ incident.name }} & {{ mail.mail_to }}\n"
              "{{ template_helper.get_incident_value(incident, 'plan_status') }}\n")
    template_file = write(tmp_path / "note.jinja", source)
    code, _, err, folder = render("--template", template_file)
    assert code == 0, err
    assert sorted(os.listdir(str(folder))) == ["preview.txt"]
    assert (folder / "preview.txt").read_text(encoding="utf-8") == \
        SAMPLE_INCIDENT_NAME + " & recipient@example.com\nActive\n"


def test_render_eml_composes_the_whole_message_without_sending(render):
    code, out, err, folder = render("--eml", "--to", "Team <team@example.org>", "--subject", "Preview",
                                    "--attachments", "*")
    assert code == 0, err
    assert os.listdir(str(folder)) == ["preview.eml"]
    _, message = read_eml(str(folder / "preview.eml"))
    assert message["To"] == "Team <team@example.org>" and message["Subject"] == "Preview"
    assert {"text/plain", "text/html"} <= set(parts_by_type(message))
    assert [part.get_filename() for part in message.iter_attachments()] == [SAMPLE_ATTACHMENT]
    assert "not sent" in out


def test_render_uses_the_given_json_files(render, tmp_path):
    incident = {"id": 9, "name": "Own incident", "severity_code": 4, "properties": {"team": "Blue"}}
    fields = {"type_name": "incident", "fields": {
        "severity_code": {"name": "severity_code", "input_type": "select", "values": [{"value": 4, "label": "Low"}]},
        "team": {"name": "team", "input_type": "text", "prefix": "properties"}}}
    files = {
        "--incident": write(tmp_path / "i.json", json.dumps(incident)),
        "--fields": write(tmp_path / "f.json", json.dumps(fields)),
        "--artifacts": write(tmp_path / "a.json", json.dumps({"data": [{"value": "x.example", "type": "DNS Name"}]})),
        "--notes": write(tmp_path / "n.json", json.dumps([{"text": "only note", "children": []}])),
    }
    template_file = write(tmp_path / "t.jinja", "{{ incident.name }}|"
                                                "{{ template_helper.get_incident_value(incident, 'severity_code') }}|"
                                                "{{ template_helper.get_incident_value(incident, 'team') }}|"
                                                "{% for a in template_helper.get_artifacts(artifact) %}{{ a.value }}"
                                                "{% endfor %}|{{ template_helper.get_notes(note)[0].text }}\n")
    arguments = ["--template", template_file]
    for option, path in files.items():
        arguments += [option, path]
    code, _, err, folder = render(*arguments)
    assert code == 0, err
    assert (folder / "preview.txt").read_text(encoding="utf-8") == "Own incident|Low|Blue|x.example|only note\n"


def test_render_shipped_datatable_template_offline(render):
    template = os.path.join(os.path.dirname(SAMPLE_DIR), "templates", "datatable.jinja")
    code, _, err, folder = render("--template", template)
    assert code == 0, err
    assert "finance-lead@example.com" in (folder / "preview.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("source, line", [
    ("<p>{{ incident.name }}</p>\n\n{% for x in %}\n", 3),              # syntax error
    ("line one\nline two\n{{ template_helper.get_datatable('No Table', incident.id) }}\n", 3),   # runtime error
    ("{{ ''.__class__.__mro__ }}\n", 1),                                  # the sandbox says no
])
def test_render_template_errors_exit_2_with_file_and_line(render, tmp_path, source, line):
    template_file = write(tmp_path / "broken.jinja", source)
    code, out, err, folder = render("--template", template_file)
    assert code == 2
    assert template_file in err and "line {0}".format(line) in err
    assert not os.path.exists(str(folder))


def test_render_of_a_missing_data_table_shows_a_dash_and_warns_as_the_app_does(render, tmp_path):
    template_file = write(tmp_path / "t.jinja", "Table:\n{{ template_helper.get_datatable('nope', incident.id) }}\n")
    code, _, err, folder = render("--template", template_file)
    assert code == 0, err
    assert (folder / "preview.txt").read_text(encoding="utf-8") == "Table:\n-\n"
    assert "warning: {0} line 2: SOAR has no data table 'nope' (rendered as '-')".format(template_file) in err


def test_render_bad_data_file_is_a_clear_error(render, tmp_path):
    code, _, err, _ = render("--notes", write(tmp_path / "n.json", '{"notes": 1}'))
    assert code == 1 and "must hold a JSON list" in err


@pytest.fixture
def app_config(tmp_path):
    template_file = write(tmp_path / "dated.jinja", "{{ template_helper.get_incident_value(incident, 'create_date') }}"
                                                     "\n")
    return write(tmp_path / "app.config", "\n".join([
        "[resilient]",
        "host = soar.example.invalid",
        "org = Test Organization",
        "email = tester@example.com",
        "password = $OUTBOUND_EMAIL_TEST_SOAR_PASSWORD",
        "resilient_mock = tests.support.soar_mock.SoarMock",
        "[fn_outbound_email]",
        "smtp_server = mail.example.com",
        "date_format = %d.%m.%Y %H:%M",
        "[fn_outbound_email:templates]",
        "dated = " + template_file,
        "example = data/templates/example_send_email.jinja",
        ""]))


def test_render_label_from_app_config(render, app_config):
    code, _, err, folder = render("-c", app_config, "--label", "dated")
    assert code == 0, err
    assert (folder / "preview.txt").read_text(encoding="utf-8") == "01.08.2024 06:40\n"   # app.config date_format


@pytest.mark.parametrize("label", ["DATED", "Dated", " dated "])
def test_render_label_matches_whatever_its_case_as_the_send_path_does(render, app_config, label):
    code, _, err, folder = render("-c", app_config, "--label", label)
    assert code == 0, err
    assert (folder / "preview.txt").read_text(encoding="utf-8") == "01.08.2024 06:40\n"


def test_render_unknown_label_names_the_known_ones(render, app_config):
    code, _, err, _ = render("-c", app_config, "--label", "nope")
    assert code == 1 and "'nope'" in err and "dated, example" in err


def test_render_live_incident_through_the_resilient_client(render, app_config, monkeypatch):
    # the resilient client talks to the test suite's SOAR mock instead of a server (resilient_mock)
    monkeypatch.setenv("OUTBOUND_EMAIL_TEST_SOAR_PASSWORD", "not-a-real-password")
    code, _, err, folder = render("-c", app_config, "--label", "example", "--incident-id", "2314",
                                  "--set", "show_notes=true")
    assert code == 0, err
    text = (folder / "preview.txt").read_text(encoding="utf-8")
    assert "Incident 2314" in text and "Child note" in text
    assert "https://soar.example.invalid/#incidents/2314?orgId=201" in text


def test_render_of_a_missing_live_incident_says_so_once(render, app_config, monkeypatch):
    monkeypatch.setenv("OUTBOUND_EMAIL_TEST_SOAR_PASSWORD", "not-a-real-password")
    with open(app_config, encoding="utf-8") as handle:
        config = handle.read().replace("tests.support.soar_mock.SoarMock", "tests.support.soar_mock.FaultSoarMock")
    with open(app_config, "w", encoding="utf-8") as handle:
        handle.write(config)
    code, _, err, _ = render("-c", app_config, "--label", "example", "--incident-id", "404404")
    assert code == 1
    assert err.strip() == ("outbound-email render: error: Incident 404404 could not be read from SOAR: "
                           "HTTP 404 Not Found")


@pytest.mark.parametrize("arguments, message", [
    (["--label", "x"], "--label needs -c"),
    (["--incident-id", "5"], "--incident-id needs -c"),
    (["--set", "incident=1"], "filled by the app"),
    (["--set", "no equals"], "NAME=VALUE"),
])
def test_render_argument_mistakes_show_usage(render, arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        render(*arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_text_part_of_datatable_jinja_keeps_the_cells_apart(render):
    from fn_outbound_email.cli.offline_soar import SAMPLE_DIR
    template = os.path.join(os.path.dirname(SAMPLE_DIR), "templates", "datatable.jinja")
    code, _, err, folder = render("-t", template)
    assert code == 0, err
    lines = (folder / "preview.txt").read_text(encoding="utf-8").splitlines()
    assert "Date Sent | Status | From | Recipients | Subject" in lines
    assert "2024-08-01T07:05:00 | Sent | soar@example.com | finance-lead@example.com | Incident 2095: please warn " \
           "your team" in lines


def test_demo_uses_the_given_incident_artifacts_and_notes_and_says_what_came_from_the_sample(tmp_path, capsys,
                                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    incident = json.load(open(os.path.join(SAMPLE_DIR, "incident.json"), encoding="utf-8"))
    incident.update(id=777, name="Lost laptop at the airport")
    arguments = {
        "--incident": write(tmp_path / "i.json", json.dumps(incident)),
        "--artifacts": write(tmp_path / "a.json", json.dumps([{"id": 1, "type": "IP Address", "value": "198.51.100.9",
                                                               "description": "airport wifi"}])),
        "--notes": write(tmp_path / "n.json", json.dumps([{"id": 5, "parent_id": None, "user_fname": "Kim",
                                                           "user_lname": "Lee", "create_date": 1722495000000,
                                                           "text": "Laptop reported at the lost and found.",
                                                           "children": []}])),
    }
    assert main(["demo"] + [item for pair in arguments.items() for item in pair]) == 0
    out = capsys.readouterr().out
    assert "Sent a mail about incident 777 " in out
    assert "  Incident data: incident from {0}; artifacts from {1}; notes from {2}; fields, attachments, data tables " \
           "from the bundled sample\n".format(arguments["--incident"], arguments["--artifacts"],
                                              arguments["--notes"]) in out
    _, message = read_eml(only_file(tmp_path / "outbox", ".eml"))
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "IP Address: 198.51.100.9 (airport wifi)" in text and "Laptop reported at the lost and found." in text
    assert "accounts@invoices-example.net" not in text and "quarantined now" not in text    # not the sample's


def test_demo_and_render_write_dates_alike_as_a_default_install(tmp_path, capsys, monkeypatch, render):
    from fn_outbound_email.util.config import config_section_data
    assert "\n#date_format=" in config_section_data()               # the generated app.config leaves it unset
    code, _, err, folder = render("--set", "show_notes=true")
    assert code == 0, err
    preview = (folder / "preview.txt").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    _, message = read_eml(only_file(tmp_path / "outbox", ".eml"))
    sent = message.get_body(preferencelist=("plain",)).get_content()
    for line in ("Created: 2024-08-01T06:40:00", "Alex Analyst wrote on 2024-08-01T06:50:00:"):
        assert "\n" + line + "\n" in preview and "\n" + line + "\n" in sent
