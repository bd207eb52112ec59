# -*- coding: utf-8 -*-
"""Concurrency: one Mailer shared by worker threads (resilient-circuits num_workers > 1), and its caches.

The load test sends 200 templated mails with an attachment from 4 threads through pooled, pipelined sessions
to a real aiosmtpd server (with PIPELINING and CHUNKING) and
checks at the server that each arrived exactly once, to the right recipient, and that no file
descriptor or temp file is left behind.
"""

import collections
import gc
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fn_outbound_email.cli.offline_soar import load_incident_data, offline_soar_client
from fn_outbound_email.lib.delivery.smtp.pool import POOL
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.templates.worker import POOL as RENDER_WORKERS
from fn_outbound_email.lib.settings import load_settings
from fn_outbound_email.lib.soar.client import SoarClient, clear_field_cache
from fn_outbound_email.lib.templates.render import TemplateRenderer
from tests.support import config_section
from tests.support.esmtp_server import EsmtpTestServer

SENDS = 200
THREADS = 4
FD_SETTLE_SECONDS = 3.0
LOAD_SECRET = "load-Test-Secret-0c4f"   # configured, never logged


def open_fds():
    """{fd: what it is open on}; a socket's target names its inode, so a reused fd number is still told apart."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:          # the fd listdir itself used, closed by now
            pass
    return fds


def fds_opened_since(baseline):
    """The fds open now that were not open at ``baseline``, once none are left (or after FD_SETTLE_SECONDS).

    The aiosmtpd server runs in this process: its end of each connection closes a moment after the
    client's QUIT, so this polls rather than reads once. The client's sockets close synchronously.
    """
    deadline = time.monotonic() + FD_SETTLE_SECONDS
    while True:
        new = set(open_fds().items()) - set(baseline.items())
        if not new or time.monotonic() > deadline:
            return sorted(new)
        time.sleep(0.02)


@pytest.fixture
def scratch_tempdir(monkeypatch):
    """A private temp folder, so 'no temp file left' is checked without other processes' files."""
    folder = tempfile.mkdtemp(prefix="outbound-email-load-")
    monkeypatch.setattr(tempfile, "tempdir", folder)
    monkeypatch.setenv("TMPDIR", folder)
    yield folder
    os.rmdir(folder)


def test_200_sends_across_4_threads_lose_nothing_duplicate_nothing_leak_nothing(scratch_tempdir, app_log):
    data = load_incident_data()
    # PIPELINING, CHUNKING and pooled sessions: the load goes through the fewest-round-trips path
    with EsmtpTestServer() as server:
        settings = load_settings(config_section.section(
            server.port, smtp_conn_timeout=10, smtp_retries=None, from_email_address="SOAR <soar@example.com>",
            client_secret=LOAD_SECRET, template_file="data/templates/example_send_email.jinja"))
        mailer = Mailer(settings, offline_soar_client(data))

        def send(number):
            return mailer.send(MailRequest(incident_id=data.incident_id, to="user{0}@example.com".format(number),
                                           subject="Load {0}".format(number), template_file=settings.template_file,
                                           attachments="*"))

        send(-1)        # warm-up: compiled template, cached field definitions, lazily imported modules
        del server.messages[:]
        gc.collect()    # earlier tests' unreachable sockets closed now, not in the middle of the count
        baseline = open_fds()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            outcomes = list(pool.map(send, range(SENDS)))
        elapsed = time.monotonic() - started
        sessions_pooled = POOL.idle_count()
        POOL.close_all()             # what the pools keep open is closed on shutdown; nothing else may stay open
        RENDER_WORKERS.close_all()   # the warm template render processes' pipes
        leaked = fds_opened_since(baseline)
        received = list(server.messages)

    assert [outcome.accepted for outcome in outcomes] == [["user{0}@example.com".format(n)] for n in range(SENDS)]
    assert len(received) == SENDS
    ids_at_server = collections.Counter(item.message["Message-ID"] for item in received)
    assert max(ids_at_server.values()) == 1                                   # no duplicates
    assert set(ids_at_server) == {outcome.message_id for outcome in outcomes}  # none lost
    for item in received:                    # threads did not mix up each other's messages
        number = item.message["Subject"].split()[-1]
        assert item.rcpt_tos == ["user{0}@example.com".format(number)]
        assert str(item.message["To"]) == "user{0}@example.com".format(number)
        assert [part.get_filename() for part in item.message.iter_attachments()] == ["original-mail-headers.txt"]
    assert leaked == [], "file descriptors left open"
    # the sends shared pooled sessions: at most one per thread at a time, each kept for the next send
    sessions = {item.peer for item in received}
    assert 1 <= len(sessions) <= THREADS and 1 <= sessions_pooled <= THREADS, (len(sessions), sessions_pooled)
    assert os.listdir(scratch_tempdir) == []
    # every send's audit line was written and formats; no secret in any line (records read before any filter)
    assert app_log.unformattable == []
    sent_lines = [line for line in app_log.lines if line.startswith("Sent ")]
    assert len(sent_lines) == SENDS + 1                                       # with the warm-up
    assert LOAD_SECRET not in app_log.text
    # the time is reported, not asserted: a busy shared machine says nothing about correctness
    print("200 sends across 4 threads took {0:.1f} s".format(elapsed))


# --- the caches under concurrent use ------------------------------------------------------------------------

def hammer(worker, threads=8):
    """Run ``worker(index)`` in ``threads`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(threads)
    failures = []

    def run(index):
        barrier.wait()
        try:
            worker(index)
        except BaseException as err:  # noqa: B902 (collected and re-raised in the main thread)
            failures.append(err)

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if failures:
        raise failures[0]


def template_source(number):
    # every third template is HTML, so both (autoescaping and plain) environments are exercised
    return "<p>template {0}: {{{{ value }}}}</p>".format(number) if number % 3 == 0 else \
        "template {0}: {{{{ value }}}}".format(number)


def expected_render(number):
    return "<p>template {0}: &lt;v&amp;&gt;</p>".format(number) if number % 3 == 0 else \
        "template {0}: <v&>".format(number)


@pytest.mark.parametrize("cache_size", [8, 256])     # with eviction under way, and with everything cached
def test_template_cache_renders_the_right_template_under_concurrent_use(cache_size):
    renderer = TemplateRenderer(cache_size=cache_size)
    templates = 24

    def worker(index):
        for iteration in range(150):
            number = (index * 7 + iteration) % templates
            rendered = renderer.render(template_source(number), {"value": "<v&>"}, name="t{0}".format(number))
            assert rendered == expected_render(number)
            assert rendered.is_html == (number % 3 == 0)

    hammer(worker)
    assert len(renderer._cache) == min(cache_size, templates)


class SlowTypesRest:
    """A SOAR REST stand-in whose /types answers take a moment (widening any race) and are counted."""

    base_url = "https://soar.example.com:443"

    def __init__(self, org_id):
        self.org_id = org_id
        self.type_calls = collections.Counter()
        self._lock = threading.Lock()

    def get(self, uri, *args, **kwargs):
        type_name = uri.split("/types/", 1)[1].split("?", 1)[0]
        with self._lock:
            self.type_calls[type_name] += 1
        time.sleep(0.005)
        return {"fields": [{"name": "{0}_field_{1}".format(type_name, self.org_id), "input_type": "text"}]}


def test_field_definition_cache_is_shared_and_correct_under_concurrent_use():
    clear_field_cache()
    rests = {org: SlowTypesRest(org) for org in (201, 202)}
    try:
        def worker(index):
            org = 201 if index % 2 else 202
            soar = SoarClient(rests[org])        # a new client per call, as each function call makes
            for iteration in range(40):
                type_name = ("incident", "email_conversations")[iteration % 2]
                fields = soar.get_field_definitions(type_name)
                assert list(fields) == ["{0}_field_{1}".format(type_name, org)]    # never another org's or type's

        threads = 8
        hammer(worker, threads)
        for rest in rests.values():
            # threads racing for an empty entry wait for the one fetching it: one request per org and type
            assert rest.type_calls == {"incident": 1, "email_conversations": 1}, rest.type_calls
        before = sum(sum(rest.type_calls.values()) for rest in rests.values())
        SoarClient(rests[201]).get_field_definitions("incident")
        assert sum(sum(rest.type_calls.values()) for rest in rests.values()) == before
    finally:
        clear_field_cache()
