# -*- coding: utf-8 -*-
"""render_worker_ms: what rendering the shipped template in a render worker process adds, in milliseconds.

The shipped template over the bundled sample incident (its SOAR stand-in answers at once), rendered by the
app's worker path (lib/templates/worker.py: the request pickled to a warm worker, template_helper's SOAR reads
answered over its pipe, the reply read back) and in the app's own process (lib/templating.py), alternately,
after a warm-up of each (template compiled, field definitions cached). The figure is the difference of the
two medians; the target is 5 ms.
"""

import os
import time

from benchmarks.common import SHIPPED_TEMPLATE, CountingSoarRest, Figure, median
from fn_outbound_email.lib.soar.client import SoarClient
from fn_outbound_email.lib.templates.helper import LazyList, TemplateHelper
from fn_outbound_email.lib.templates.render import TemplateRenderer
from fn_outbound_email.lib.templates.worker import WorkerRenderer
from fn_outbound_email.lib.templates.worker_pool import WorkerPool

TARGET = 5.0
ROUNDS = 200
WARM_UP = 10
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _context(soar, incident_id):
    """The context a send gives the template (lib/mailer.py's), made anew for each render as a send does."""
    return {"incident": soar.get_incident(incident_id),
            "artifact": LazyList(lambda: soar.get_artifacts(incident_id)),
            "note": LazyList(lambda: soar.get_notes(incident_id)),
            "mail": {"mail_to": ["analyst@example.com"], "mail_subject": "Incident notification"},
            "template_helper": TemplateHelper(soar)}


def _time(renderer, source, soar, incident_id):
    context = _context(soar, incident_id)
    started = time.perf_counter()
    renderer.render(source, context, name="example_send_email.jinja")
    return time.perf_counter() - started


def measure(rounds=ROUNDS):
    rest = CountingSoarRest()
    soar = SoarClient(rest)
    with open(os.path.join(_PACKAGE, "fn_outbound_email", SHIPPED_TEMPLATE), encoding="utf-8") as template:
        source = template.read()
    pool = WorkerPool(warm=1)
    in_process, in_worker = TemplateRenderer(), WorkerRenderer(pool)
    try:
        for _ in range(WARM_UP):
            _time(in_process, source, soar, rest.incident_id)
            _time(in_worker, source, soar, rest.incident_id)
        app_times, worker_times = [], []
        for _ in range(rounds):
            app_times.append(_time(in_process, source, soar, rest.incident_id))
            worker_times.append(_time(in_worker, source, soar, rest.incident_id))
    finally:
        pool.close_all()
    added_ms = (median(worker_times) - median(app_times)) * 1000
    return Figure("render_worker_ms", TARGET, measured=added_ms, detail=(
        "shipped template, median of {0}: {1:.2f} ms in a worker process, {2:.2f} ms in the app's process".format(
            rounds, median(worker_times) * 1000, median(app_times) * 1000)))
