# -*- coding: utf-8 -*-
"""Real `resilient-circuits` processes for the deployed tests, each in a folder of its own.

Each process gets its own app.config (``APP_CONFIG_FILE``), lock file (``APP_LOCK_FILE``), HOME and log
file, pointing at the SOAR simulator (REST), the ActiveMQ broker (STOMP over TLS) and an SMTP receiver.
``CircuitsProcess.start`` returns at once; ``wait_subscribed`` waits (bounded) until the log says it is
subscribed to the message destination. ``stop`` always ends the process (SIGTERM, then SIGKILL).
``Replicas`` starts several `run` processes at once against one broker and SOAR and kills what is left.
"""

import concurrent.futures
import os
import signal
import subprocess
import sys
import time

SLOWNESS = float(os.environ.get("TEST_SLOWNESS", "1"))
SUBSCRIBED = "Subscribed to message destination actions."
STARTED_TIMEOUT = 60 * SLOWNESS


def circuits_command():
    """The resilient-circuits entry point of this test run's Python (its venv)."""
    return [os.path.join(os.path.dirname(sys.executable), "resilient-circuits")]


def app_config_text(soar_port, stomp_port, ca_file, smtp_port, stomp_cafile=None, extra=None, templates=None,
                    num_workers=10):
    """The app.config of a deployed app: API key login, the test CA for REST and STOMP, SMTP to ``smtp_port``."""
    from tests.support.soar_simulator import API_KEY_ID, API_KEY_SECRET, ORG_NAME
    settings = {"smtp_server": "127.0.0.1", "smtp_port": smtp_port, "smtp_conn_timeout": int(15 * SLOWNESS),
                "smtp_retries": 0, "from_email_address": "soar@example.com"}
    settings.update(extra or {})
    lines = ["[resilient]", "host = 127.0.0.1", "port = {0}".format(soar_port), "org = {0}".format(ORG_NAME),
             "api_key_id = {0}".format(API_KEY_ID), "api_key_secret = {0}".format(API_KEY_SECRET),
             "cafile = {0}".format(ca_file), "stomp_host = 127.0.0.1", "stomp_port = {0}".format(stomp_port),
             "stomp_cafile = {0}".format(stomp_cafile or ca_file), "num_workers = {0}".format(num_workers),
             "logdir = .", "logfile = app.log", "loglevel = INFO", "", "[fn_outbound_email]"]
    lines += ["{0} = {1}".format(key, value) for key, value in settings.items() if value is not None]
    if templates:
        lines += ["", "[fn_outbound_email:templates]"] + ["{0} = {1}".format(*item) for item in templates.items()]
    return "\n".join(lines) + "\n"


class CircuitsProcess:
    """One ``resilient-circuits <args>`` in ``folder`` with ``config_text`` as its app.config."""

    def __init__(self, folder, config_text, args=("run",)):
        self.folder = str(folder)
        os.makedirs(os.path.join(self.folder, "home"), exist_ok=True)
        self.config_file = os.path.join(self.folder, "app.config")
        with open(self.config_file, "w") as handle:
            handle.write(config_text)
        self.output_file = os.path.join(self.folder, "output.log")
        self.args = list(args)
        self.process = None

    def environment(self):
        env = dict(os.environ, APP_CONFIG_FILE=self.config_file, HOME=os.path.join(self.folder, "home"),
                   APP_LOCK_FILE=os.path.join(self.folder, "circuits.lock"), PYTHONUNBUFFERED="1")
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(name, None)
        return env

    def start(self):
        with open(self.output_file, "wb") as output:
            self.process = subprocess.Popen(circuits_command() + self.args, cwd=self.folder, env=self.environment(),
                                            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def run(self, timeout=STARTED_TIMEOUT):
        """Run to completion (selftest, customize): (exit code, output)."""
        self.start()
        try:
            self.process.wait(timeout=timeout)
        finally:
            self.stop()
        return self.process.returncode, self.output()

    def output(self):
        with open(self.output_file, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def wait_for(self, text, timeout=STARTED_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("resilient-circuits never logged {0!r} (exit {1}):\n{2}".format(
            text, self.process.poll(), self.output()[-6000:]))

    def wait_subscribed(self, timeout=STARTED_TIMEOUT):
        self.wait_for(SUBSCRIBED, timeout)
        return self

    def signal(self, signo):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signo)

    def wait_exit(self, timeout):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=20 * SLOWNESS):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        if self.wait_exit(timeout) is None:
            self.process.kill()
            self.process.wait(timeout=timeout)


class Replicas:
    """Starts `resilient-circuits run` processes against the broker and simulator; stops them all."""

    def __init__(self, folder, broker, soar, ca_file):
        self.folder, self.broker, self.soar, self.ca_file = folder, broker, soar, ca_file
        self.processes = []

    def start(self, count, smtp_port, **config):
        started = []
        for number in range(count):
            folder = self.folder / "replica{0}".format(len(self.processes) + 1)
            folder.mkdir()
            text = app_config_text(self.soar.port, self.broker.port, self.ca_file, smtp_port, **config)
            process = CircuitsProcess(folder, text).start()
            self.processes.append(process)
            started.append(process)
        # they start in parallel; each must say it subscribed to the message destination
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda process: process.wait_subscribed(), started))
        return started

    def stop_all(self):
        # a test ends its replicas itself when it means to; whatever still runs is killed at once
        for process in self.processes:
            process.signal(signal.SIGKILL)
        for process in self.processes:
            process.stop()
