# -*- coding: utf-8 -*-
"""rest_time_ratio: time on SOAR REST calls of a templated send with 4 attachments, against the same calls in a row.

The SOAR stand-in (the bundled sample incident with 4 attachments of 64 KiB) answers every call after 50 ms,
about what a SOAR server across a network takes. The app's send (shipped template, attachments '*', composed
and delivered to a local SMTP server) is timed whole, after a warm-up send (field definitions cached,
template compiled); the reference makes the REST calls that send made, one after another, on the same
stand-in. The app reads the attachment list while the body renders and downloads the attachments 4 at a
time, so its SOAR time is about two round trips where the calls in a row take six.
"""

import os
import time

from benchmarks.common import Figure, CountingSoarRest, SmtpSink, app_settings, median, sample_mailer, \
    templated_request
from fn_outbound_email.lib.soar.client import clear_field_cache

TARGET = 0.5
DELAY = 0.05            # seconds SOAR takes to answer one call
ATTACHMENTS = 4
ATTACHMENT_BYTES = 64 * 1024
ROUNDS = 5


class SlowSoarRest(CountingSoarRest):
    """The sample incident with 4 attachments, every REST call answered after DELAY seconds."""

    def __init__(self):
        super().__init__()
        self.contents = {number: os.urandom(ATTACHMENT_BYTES) for number in range(1, ATTACHMENTS + 1)}
        self.made = []          # (method, uri) of each call, to make them again in a row

    def _attachments(self):
        return {"attachments": [{"type": "incident", "id": number, "name": "evidence{0}.bin".format(number),
                                 "inc_id": self.incident_id, "task_id": None, "size": ATTACHMENT_BYTES}
                                for number in self.contents]}

    def _attachment_content(self, attachment_id):
        return self.contents[int(attachment_id)]

    def get(self, uri, *args, **kwargs):
        self.made.append(("get", uri))
        time.sleep(DELAY)
        return super().get(uri, *args, **kwargs)

    def post(self, uri, payload=None, *args, **kwargs):
        self.made.append(("post", uri))
        time.sleep(DELAY)
        return super().post(uri, payload, *args, **kwargs)

    def get_content(self, uri, *args, **kwargs):
        self.made.append(("get_content", uri))
        time.sleep(DELAY)
        return super().get_content(uri, *args, **kwargs)


def measure(rounds=ROUNDS):
    clear_field_cache()
    with SmtpSink() as sink:
        settings = app_settings(sink.port)
        rest = SlowSoarRest()
        mailer = sample_mailer(settings, rest)
        request = templated_request(settings, rest, attachments="*")
        outcome = mailer.send(request)                       # warm-up
        if len(outcome.attachments_sent) != ATTACHMENTS:
            raise RuntimeError("the send attached {0}, not {1} files".format(outcome.attachments_sent, ATTACHMENTS))
        app_times, serial_times = [], []
        for _ in range(rounds):
            del rest.made[:]
            started = time.perf_counter()
            mailer.send(request)
            app_times.append(time.perf_counter() - started)
            made = list(rest.made)

            started = time.perf_counter()
            for method, uri in made:
                getattr(rest, method)(uri)
            serial_times.append(time.perf_counter() - started)
        if sink.received != 1 + rounds:
            raise RuntimeError("the server received {0} messages, not {1}".format(sink.received, 1 + rounds))
    clear_field_cache()
    app, serial = median(app_times), median(serial_times)
    return Figure("rest_time_ratio", TARGET, measured=app / serial,
                  detail="median of {0}: the send {1:.0f} ms, its {2} REST calls in a row {3:.0f} ms ({4} ms per call; "
                         "{5})".format(rounds, app * 1000, len(made), serial * 1000, int(DELAY * 1000),
                                       ", ".join("{0} {1}".format(method, uri.split("?")[0]) for method, uri in made)))
