# -*- coding: utf-8 -*-
"""Templates render in worker processes with hard limits (lib/templates/worker.py): nothing a template does takes
the app down or starves it, and no secret is within a template's reach.

send_email2 runs through pytest-resilient-circuits with the mock SOAR and sends to a real SMTP server on
127.0.0.1. The limits are small so each case ends in a second or two: without the worker, each of them ran
for minutes, took gigabytes or crashed the test process (the nested tuple's hash).
"""

import os
import pickle
import signal

import pytest

from fn_outbound_email.cli.main import main
from fn_outbound_email.lib.errors import ConfigurationError
from fn_outbound_email.lib.settings import load_settings
from fn_outbound_email.lib.templates import worker as render_worker
from fn_outbound_email.lib.templates.worker import POOL
from fn_outbound_email.lib.templates.worker_pool import RenderWorker
from tests.support.config_section import section
from tests.support.function_runner import app_config, send_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, ORG_ID, SoarMock

SLOWNESS = float(os.environ.get("TEST_SLOWNESS", "1"))
SMTP_PORT = free_port()
TIMEOUT = 1 * SLOWNESS
MAX_OUTPUT = 1000000
MAX_MEMORY = 192 * 1024 * 1024
SECRET = "render-worker-test-secret"
config_data = app_config(SMTP_PORT, from_email_address="soar@example.com", template_timeout=TIMEOUT,
                         template_max_output=MAX_OUTPUT, template_max_memory=MAX_MEMORY,
                         smtp_password=SECRET, client_secret=SECRET)
resilient_mock = SoarMock

BIG = "{% set big = 'x' * 999000 %}"
# 30,000 loop turns of 10 levels each: CPython's tuple hash recurses without a depth check, and crashes
NESTED_TUPLE_HASH = ("{% set ns = namespace(t=()) %}{% for i in range(30000) %}"
                     "{% set ns.t = ((((((((((ns.t,),),),),),),),),),) %}{% endfor %}{{ {ns.t: 1} | length }}")
TOO_MUCH = "it needed more memory than template_max_memory allows"


def send(circuits_app, template):
    return send_function(circuits_app, "send_email2", {"mail_to": "alice@example.com"},
                         mail_inline_template=template)


def assert_still_serving(circuits_app, server):
    server.messages.clear()
    result = send(circuits_app, "Incident {{ incident.id }} is fine")
    assert result["success"] is True, result["reason"]
    assert server.messages[0].message.get_content().strip() == "Incident {0} is fine".format(INCIDENT_ID)


@pytest.mark.parametrize("template, reason", [
    # the sandbox's own checks, before anything is built
    (BIG + "{{ ('%s' * 1000) % ((big,) * 1000) }}", "a formatted value would be 999002000 characters"),
    (BIG + "{{ range(1000) | join(big) }}", "a joined string would be 998001000 characters"),
    ("{{ [1, 2, 3] | slice(30000000) | list }}", "a sliced list would be 30000000 characters"),
    ("{{ lipsum(300000) }}", "failed on line 1: UndefinedError: 'lipsum' is undefined"),
    # built in C code, out of the sandbox's sight: the worker's address space limit
    (BIG + "{{ range(1000) | map('string') | join(big) }}", TOO_MUCH),
    (BIG + "{{ ([[big]] * 1000) | string }}", TOO_MUCH),
    (BIG + "{% set l = [] %}{% for i in range(2000) %}{% do l.append(big ~ i) %}{% endfor %}{{ l | length }}",
     TOO_MUCH),
    # inside one C call, where no deadline check runs: the worker is killed at the deadline
    ("{% set l = range(10) | list %}{{ ([l] * 100000) | sum(start=[]) | length }}", "template_timeout"),
    # (a catastrophic regular expression: test_a_render_past_its_deadline_is_killed_and_its_worker_replaced)
    # a crash of CPython itself ends the worker only
    (NESTED_TUPLE_HASH, "it crashed its render process (SIGSEGV"),
])
def test_a_template_cannot_take_down_or_starve_the_app(circuits_app, server, template, reason):
    result = send(circuits_app, template)
    assert result["success"] is False
    assert result["reason"].startswith("Template 'mail_inline_template'"), result["reason"]
    assert reason in result["reason"], result["reason"]
    assert server.messages == []
    assert_still_serving(circuits_app, server)


def test_a_render_past_its_deadline_is_killed_and_its_worker_replaced(circuits_app, server, monkeypatch):
    POOL.close_all()
    started = []
    real_init = RenderWorker.__init__

    def recording_init(self, max_memory):
        real_init(self, max_memory)
        started.append(self.process)

    monkeypatch.setattr(RenderWorker, "__init__", recording_init)
    # a catastrophic regular expression: one C call that no deadline check inside the worker can interrupt
    result = send(circuits_app, "{{ template_helper.regex_replace('a' * 40 + '!', '(a+)+$', '') }}")
    assert result["reason"] == ("Template 'mail_inline_template' was stopped: it ran longer than template_timeout "
                                "({0:g} s)".format(TIMEOUT))
    assert_still_serving(circuits_app, server)
    killed = [process for process in started if process.returncode == -signal.SIGKILL]
    assert len(killed) == 1                        # the one that ran the regular expression, and no other
    assert len(started) >= 2                       # its replacement rendered the next mail


def test_template_helper_and_lazy_context_work_from_the_worker(circuits_app, server, monkeypatch):
    answered = []           # the reads the app answered for the worker
    real_answer = render_worker._Reads.answer
    monkeypatch.setattr(render_worker._Reads, "answer",
                        lambda self, message: answered.append([message["call"]] + message["args"]) or
                        real_answer(self, message))
    template = ("{{ template_helper.get_incident_value(incident, 'severity_code') }}|"
                "{{ template_helper.generate_incident_url(incident.id) }}|"
                "{{ template_helper.get_datatable_value_array(incident.id, 'ioc_table', 'ioc') }}|"
                "{{ template_helper.regex_replace('a-b-c', '-', '+') }}|"
                "{{ template_helper.format_timestamp(incident.create_date) }}|"
                "{% for a in template_helper.get_artifacts(artifact) %}{{ a.value }};{% endfor %}|"
                "{{ mail.mail_to }}")
    result = send(circuits_app, template)
    assert result["success"] is True, result["reason"]
    assert server.messages[0].message.get_content().strip() == (
        "Medium|https://soar.example.invalid/#incidents/{0}?orgId={1}|evil.example, <b>x</b>.example|a+b+c|"
        "2022-08-05T14:03:23.441000|203.0.113.7;billing@evil.example;|alice@example.com".format(INCIDENT_ID, ORG_ID))
    assert any("/artifacts/" in uri for _, uri in SoarMock.calls)
    assert sorted(answered) == sorted([
        ["get_field_definitions", "incident"], ["incident_url", INCIDENT_ID], ["get_field_definitions", "ioc_table"],
        ["get_datatable_rows", INCIDENT_ID, "ioc_table"], ["context", "artifact"]])
    # artifacts and notes are fetched only when the template uses them
    SoarMock.calls.clear()
    assert send(circuits_app, "{{ incident.name }}")["success"] is True
    assert not any("/artifacts/" in uri or "/comments/" in uri for _, uri in SoarMock.calls), SoarMock.calls


def test_no_secret_is_within_a_templates_reach(circuits_app, server, monkeypatch):
    # a secret in the app's environment (app.config can take secrets from $VARIABLES) stays out of the worker's
    monkeypatch.setenv("OUTBOUND_EMAIL_TEST_SECRET", SECRET)
    POOL.close_all()
    sent = []
    real_send = RenderWorker.send
    monkeypatch.setattr(RenderWorker, "send", lambda self, data: sent.append(data) or real_send(self, data))

    result = send(circuits_app, "{{ template_helper.get_datatable('ioc_table', incident.id) | length > 0 }}")
    assert result["success"] is True, result["reason"]
    assert server.messages[0].message.get_content().strip() == "True"
    for attempt in ("{{ template_helper.soar }}", "{{ template_helper._soar._rest }}",
                    "{{ template_helper.get_notes.__self__._soar }}",
                    "{{ template_helper.__class__.__init__.__globals__ }}"):
        server.messages.clear()
        result = send(circuits_app, attempt)
        if result["success"]:         # an unsafe attribute alone is undefined: it prints nothing
            assert server.messages[0].message.get_content().strip() == "", attempt
        else:
            assert "sandbox does not allow" in result["reason"], result["reason"]
            assert SECRET not in result["reason"]

    # what the worker was given: the context as plain data and the answers to its reads, no client, no secret
    assert sent
    for data in sent:
        assert SECRET.encode() not in data and b"not-a-real-password" not in data
        assert b"SoarClient" not in data and b"resilient" not in data
        kind, message = pickle.loads(data)
        if kind == "render":
            assert set(message["context"]) == {"incident", "mail"}
            assert message["helper"] == {"date_format": None}
    for pid in POOL.pids():
        with open("/proc/{0}/environ".format(pid), "rb") as environ:
            assert SECRET.encode() not in environ.read()


def test_template_max_memory_leaves_python_room_to_start():
    with pytest.raises(ConfigurationError) as raised:
        load_settings(section(SMTP_PORT, template_max_memory=1024 * 1024))
    assert "template_max_memory must be at least 134217728" in str(raised.value)
    assert load_settings(section(SMTP_PORT)).template_limits.max_memory == 512 * 1024 * 1024


def test_outbound_email_render_uses_a_worker_too(tmp_path, capsys):
    """The command line's previews render the way sends do: a template that crashes Python ends its worker only."""
    template = tmp_path / "nested.jinja"
    template.write_text("<p>{0}</p>".format(NESTED_TUPLE_HASH), encoding="utf-8")
    code = main(["render", "--out", str(tmp_path / "preview"), "--template", str(template)])
    assert code == 2
    assert "Template 'nested.jinja' was stopped: it crashed its render process (SIGSEGV" in capsys.readouterr().err
    assert main(["render", "--out", str(tmp_path / "preview")]) == 0     # the shipped template, in a new worker


def test_a_worker_whose_app_has_gone_ends_quietly():
    """The app (e.g. `outbound-email demo`) may end while a warm worker is still starting: the worker's first
    message then meets a closed pipe, and it ends without a traceback on the user's terminal."""
    import subprocess
    import sys
    to_worker_read, to_worker_write = os.pipe()
    from_worker_read, from_worker_write = os.pipe()
    os.close(from_worker_read)               # the app is gone before the worker says it is ready
    try:
        worker = subprocess.run(
            [sys.executable, "-m", "fn_outbound_email.lib.templates.worker_main", str(to_worker_read),
             str(from_worker_write), str(256 * 1024 * 1024)],
            pass_fds=(to_worker_read, from_worker_write), stdin=subprocess.DEVNULL, capture_output=True,
            timeout=60)
    finally:
        for fd in (to_worker_read, to_worker_write, from_worker_write):
            os.close(fd)
    assert (worker.returncode, worker.stderr) == (0, b"")
