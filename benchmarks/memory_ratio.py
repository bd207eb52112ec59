# -*- coding: utf-8 -*-
"""memory_ratio: peak RSS increase while sending a 25 MiB attachment, divided by 25 MiB.

The send runs in a child process (``python -m benchmarks.memory_ratio --child PORT``) so its peak is its
own: the SMTP server stays in the parent. The child warms the whole path up with a small attachment first;
the baseline is its resident size right before the big send, the peak is ``ru_maxrss`` after it. The
attachment comes from the SOAR stand-in, as SOAR's REST API hands it over: one bytes object.
"""

import argparse
import gc
import json
import os
import resource
import subprocess
import sys

from benchmarks.common import Figure, CountingSoarRest, SmtpSink, app_settings, sample_mailer
from fn_outbound_email.lib.mailer import MailRequest

TARGET = 3.0
ATTACHMENT_BYTES = 25 * 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AttachmentSoarRest(CountingSoarRest):
    """The sample incident with one attachment of ``size`` random bytes."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def _attachments(self):
        return {"attachments": [{"type": "incident", "id": 1, "name": "capture.pcap", "inc_id": self.incident_id,
                                 "task_id": None, "size": self.size}]}

    def _attachment_content(self, attachment_id):
        return os.urandom(self.size)


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024      # KiB on Linux


def child(port):
    """Send once small (warm-up), then the big attachment; print the figures as JSON."""
    settings = app_settings(port, max_message_size=64 * 1024 * 1024, template_file="")

    def send(size):
        rest = AttachmentSoarRest(size)
        outcome = sample_mailer(settings, rest).send(MailRequest(
            incident_id=rest.incident_id, to="analyst@example.com", subject="capture", body="The capture is attached.",
            attachments="*"))
        assert outcome.accepted and outcome.attachments_sent == ["capture.pcap"]

    send(64 * 1024)
    gc.collect()
    baseline = _resident_bytes()
    send(ATTACHMENT_BYTES)
    print(json.dumps({"baseline": baseline, "peak": _peak_bytes(), "attachment": ATTACHMENT_BYTES}))


def measure():
    with SmtpSink() as sink:
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        finished = subprocess.run([sys.executable, "-m", "benchmarks.memory_ratio", "--child", str(sink.port)],
                                  cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
        if finished.returncode != 0:
            raise RuntimeError("the memory child failed: {0}".format(finished.stderr.strip()[-2000:]))
        result = json.loads(finished.stdout.strip().splitlines()[-1])
        if sink.received != 2:
            raise RuntimeError("the server received {0} messages, not 2".format(sink.received))
    increase = result["peak"] - result["baseline"]
    mib = 1024 * 1024
    return Figure("memory_ratio", TARGET, measured=increase / result["attachment"],
                  detail="peak RSS +{0:.0f} MiB over {1:.0f} MiB for a {2:.0f} MiB attachment".format(
                      increase / mib, result["baseline"] / mib, result["attachment"] / mib))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, metavar="PORT", required=True,
                        help="send to the SMTP server on 127.0.0.1:PORT and print the RSS figures")
    child(parser.parse_args().child)
