# -*- coding: utf-8 -*-
"""compose_time_ratio and compose_memory_ratio: the app composing a message, against the email package
composing the same message alone.

The email package writes the app's MIME (lib/compose.py); the app adds the checks on every folded header
line and writes attachment bodies itself. These figures keep both choices checkable in every run:

* ``compose_time_ratio``: ``build_content`` + ``assemble`` of send_email2's message (the shipped template
  rendered over the sample incident, HTML with its plain-text alternative), divided by ``EmailMessage``
  with ``policy.SMTP`` building and writing the same message with its defaults; median of interleaved
  rounds. What the checks cost.
* ``compose_memory_ratio``: the peak memory (tracemalloc) of composing a message with an 8 MiB
  attachment, the app divided by the email package (``add_attachment``). What the hand-written
  attachment bodies save.
"""

import os
import time
import tracemalloc
from datetime import datetime
from email import policy
from email.message import EmailMessage

from benchmarks.common import RECIPIENT, SENDER, CountingSoarRest, Figure, NamedFigure, app_settings, median, \
    sample_mailer, templated_request
from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.message.addresses import parse_address

ROUNDS = 200
WARM_UP = 20
ATTACHMENT_BYTES = 8 * 1024 * 1024


def _sample_body():
    """The body send_email2 renders with the shipped template over the sample incident."""
    settings = app_settings(25)             # nothing is sent: the port is never used
    rest = CountingSoarRest()
    return sample_mailer(settings, rest).prepare(templated_request(settings, rest)).body


def _headers():
    return compose.OuterHeaders(sender=parse_address(SENDER, "mail_from"), to=[parse_address(RECIPIENT, "mail_to")],
                                subject="Incident notification", message_id="<1.2@example.com>")


def _app_message(body, attachments, headers):
    return compose.assemble(headers, compose.build_content(body, attachments, html=True))


def _email_package_message(body, attachments, headers):
    """The same message as the email package writes it on its own (its encodings and boundary choices)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = [headers.sender]
    message["To"] = headers.to
    message["Subject"] = headers.subject
    message["Date"] = datetime.now().astimezone()
    message["Message-ID"] = headers.message_id
    message.set_content(compose.html_to_text(body))
    message.add_alternative(body, subtype="html")
    for attachment in attachments:
        maintype, subtype = attachment.mime_type
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=compose.safe_attachment_name(attachment.name))
    return message.as_bytes()


def _timed(compose_message, *arguments):
    started = time.perf_counter()
    compose_message(*arguments)
    return time.perf_counter() - started


def _measure_time_ratio(figure, rounds=ROUNDS):
    body, headers = _sample_body(), _headers()
    for _ in range(WARM_UP):
        _app_message(body, (), headers)
        _email_package_message(body, (), headers)
    app_times, package_times = [], []
    for _ in range(rounds):                 # interleaved, so both see the same machine load
        app_times.append(_timed(_app_message, body, (), headers))
        package_times.append(_timed(_email_package_message, body, (), headers))
    app, package = median(app_times), median(package_times)
    return Figure(figure.name, figure.TARGET, measured=app / package, detail=(
        "median per message: app {0:.2f} ms, email package alone {1:.2f} ms ({2} bytes of HTML body, {3} rounds)"
    ).format(app * 1000, package * 1000, len(body), rounds))


def _peak(compose_message, *arguments):
    tracemalloc.start()
    try:
        compose_message(*arguments)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _measure_memory_ratio(figure):
    attachments = [compose.Attachment("capture.pcap", os.urandom(ATTACHMENT_BYTES))]
    body, headers = "<p>The capture is attached.</p>", _headers()
    app = _peak(_app_message, body, attachments, headers)
    package = _peak(_email_package_message, body, attachments, headers)
    mib = 1024 * 1024
    return Figure(figure.name, figure.TARGET, measured=app / package, detail=(
        "peak while composing with a {0:.0f} MiB attachment: app {1:.0f} MiB, email package alone {2:.0f} MiB"
    ).format(ATTACHMENT_BYTES / mib, app / mib, package / mib))


compose_time_ratio = NamedFigure("compose_time_ratio", 1.5, _measure_time_ratio)
compose_memory_ratio = NamedFigure("compose_memory_ratio", 0.5, _measure_memory_ratio)
