# -*- coding: utf-8 -*-
"""`outbound-email check`: the selftest's SMTP test from app.config alone. The [resilient] section names a SOAR
that does not exist, so a pass shows SOAR is never contacted; a failure is one clear line and exit status 1."""

import pytest

from fn_outbound_email.cli.main import main
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpTestServer, free_port

UNREACHABLE_SOAR = "[resilient]\nhost=soar.example.invalid\nport=443\norg=Test\napi_key_id=x\napi_key_secret=y\n\n"


@pytest.fixture(scope="module")
def tls(tls_pki):
    return {"ca": tls_pki.ca_file, "context": tls_pki.context}


def write_config(tmp_path, port, **values):
    lines = ["[fn_outbound_email]", "smtp_server=127.0.0.1", "smtp_port={0}".format(port), "smtp_conn_timeout=5"]
    lines += ["{0}={1}".format(key, value) for key, value in values.items()]
    path = tmp_path / "app.config"
    path.write_text(UNREACHABLE_SOAR + "\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_check_passes_with_starttls_and_login_without_soar_and_sends_nothing(tmp_path, capsys, tls):
    with SmtpTestServer(tls_context=tls["context"], require_starttls=True, auth=True) as server:
        config = write_config(tmp_path, server.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"],
                              smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD)
        assert main(["check", "-c", config]) == 0
        assert server.messages == []
    out = capsys.readouterr().out
    assert out == "Connection check passed: 127.0.0.1:{0}, TLS mode starttls, logged in as {1}. No mail was " \
                  "sent.\n".format(server.port, SMTP_USER)
    assert SMTP_PASSWORD not in out


def test_a_failure_is_one_line_with_the_selftests_reason(tmp_path, capsys, tls):
    with SmtpTestServer(tls_context=tls["context"], auth=True) as server:
        config = write_config(tmp_path, server.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=tls["ca"],
                              smtp_user=SMTP_USER, smtp_password="wrong-password")
        assert main(["check", "-c", config]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("outbound-email check: error: ") and "refused the login" in lines[0]
    assert "wrong-password" not in captured.err + captured.out and captured.out == ""


def test_refused_connection_and_missing_config(tmp_path, capsys, monkeypatch):
    assert main(["check", "-c", write_config(tmp_path, free_port(), smtp_ssl_mode="None")]) == 1
    assert "refused the connection" in capsys.readouterr().err
    assert main(["check", "-c", str(tmp_path / "none.config")]) == 1
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("APP_CONFIG_FILE", raising=False)
    (tmp_path / "app.config").unlink()
    assert main(["check"]) == 1
    assert "no app.config found: give one with -c FILE" in capsys.readouterr().err


def test_check_reads_app_config_in_the_current_folder(tmp_path, capsys, monkeypatch):
    with SmtpTestServer() as server:
        write_config(tmp_path, server.port, smtp_ssl_mode="None")
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("APP_CONFIG_FILE", raising=False)
        assert main(["check"]) == 0
    assert "Connection check passed: 127.0.0.1:{0}, TLS mode none, no login".format(server.port) in \
        capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "oauth2-token"])
def test_help_names_the_app_config_files_in_the_order_they_are_read(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: ./app.config, else ~/.resilient/app.config, when it exists; $APP_CONFIG_FILE, when set, wins " \
           "over both" in text
