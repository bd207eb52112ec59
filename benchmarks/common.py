# -*- coding: utf-8 -*-
"""What the benchmark figures share: the result type, a counting SMTP sink and the sample-incident Mailer."""

import collections
import os
import platform
import re
import statistics
import threading
from dataclasses import dataclass
from typing import Optional

from aiosmtpd.controller import Controller

from fn_outbound_email.cli.offline_soar import OfflineSoarRest, load_incident_data
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import load_settings
from fn_outbound_email.lib.soar.client import SoarClient
from tests.support import config_section
from tests.support.smtp_server import free_port, serve_on_bound_socket

SHIPPED_TEMPLATE = "data/templates/example_send_email.jinja"
SENDER = "SOAR <soar@example.com>"
RECIPIENT = "analyst@example.com"
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Figure:
    name: str
    target: float
    measured: Optional[float] = None      # None when skipped
    detail: str = ""                      # what was measured side by side, for people
    skipped: Optional[str] = None         # why the figure could not be measured

    @property
    def passed(self):
        return None if self.measured is None else self.measured <= self.target

    def as_dict(self):
        return {"measured": self.measured, "target": self.target, "pass": self.passed, "detail": self.detail,
                "skipped": self.skipped}


class NamedFigure:
    """One of several figures a module measures, in the shape benchmarks/__main__.py expects (TARGET, measure());
    ``measure`` is called with the figure."""

    def __init__(self, name, target, measure):
        self.name, self.TARGET, self._measure = name, target, measure

    def measure(self):
        return self._measure(self)


def median(samples):
    return statistics.median(samples)


def machine():
    return {"cpu": _cpu_model(), "cores": _cores(), "python": platform.python_version(),
            "system": "{0} {1}".format(platform.system(), platform.release())}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --- the SMTP server ------------------------------------------------------------------------------------------
class _CountingHandler:
    """Accepts every message and keeps only its Message-ID (a 25 MiB message is not kept)."""

    def __init__(self):
        self.message_ids = collections.Counter()
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        header_block = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        match = _MESSAGE_ID.search(header_block)
        with self._lock:
            self.message_ids[match.group(1).decode("ascii", "replace") if match else None] += 1
        return "250 OK: queued"


class SmtpSink:
    """A local aiosmtpd server without a size limit: ``with SmtpSink() as sink: sink.port, sink.received``."""

    def __init__(self):
        self.handler = _CountingHandler()
        self.port = free_port()
        self._controller = serve_on_bound_socket(Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                                            data_size_limit=None))

    @property
    def received(self):
        return sum(self.handler.message_ids.values())

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc_info):
        self._controller.stop()


# --- the app's side ---------------------------------------------------------------------------------------------
class CountingSoarRest(OfflineSoarRest):
    """The offline SOAR stand-in over the bundled sample incident, counting the REST calls made to it."""

    def __init__(self, data=None):
        data = data or load_incident_data()
        super().__init__(data)
        self.incident_id = data.incident_id
        self.calls = []

    def get(self, uri, *args, **kwargs):
        self.calls.append("GET " + uri)
        return super().get(uri, *args, **kwargs)

    def post(self, uri, payload=None, *args, **kwargs):
        self.calls.append("POST " + uri)
        return super().post(uri, payload, *args, **kwargs)

    def get_content(self, uri, *args, **kwargs):
        self.calls.append("GET " + uri)
        return super().get_content(uri, *args, **kwargs)


def app_settings(port, **config):
    return load_settings(config_section.section(port, **dict(
        {"smtp_conn_timeout": 30, "from_email_address": SENDER, "template_file": SHIPPED_TEMPLATE}, **config)))


def sample_mailer(settings, rest):
    """A Mailer as a send_email2 call builds one, with the SOAR stand-in ``rest``."""
    return Mailer(settings, SoarClient(rest))


def templated_request(settings, rest, **fields):
    """send_email2 with the shipped template over the sample incident."""
    return MailRequest(incident_id=rest.incident_id, to=RECIPIENT,
                       subject="Incident notification", template_file=settings.template_file, **fields)
