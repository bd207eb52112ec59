# -*- coding: utf-8 -*-
"""Sends over a simulated WAN: round trips are what a user waits for when the relay is 25-100 ms away.

A STARTTLS + AUTH server on 127.0.0.1 that offers PIPELINING and CHUNKING (tests/support/esmtp_server.py) sits behind
a proxy that delays every byte by WAN_DELAY seconds each way (benchmarks/wan_proxy.py). Side by side in one run:

* wan_fresh_ratio: one send_email2 send (prepare + deliver, a fresh session, 3 recipients) against raw smtplib
  doing the same exchange (STARTTLS, login, sendmail, quit) with the same message;
* wan_burst_ratio: 20 sends in a row through the app (session reuse on) against raw smtplib with a new
  session per mail;
* round_trips_fresh: the client flights the proxy counts for the app's fresh send.
"""

import os
import pathlib
import smtplib
import ssl
import tempfile
import time

from benchmarks.common import Figure, CountingSoarRest, NamedFigure, app_settings, median, sample_mailer, \
    templated_request
from fn_outbound_email.lib.delivery.smtp.pool import POOL
from benchmarks.wan_proxy import DelayProxy

WAN_DELAY = float(os.environ.get("WAN_DELAY", "0.025"))     # one way: a 50 ms round trip
RECIPIENTS = ("analyst@example.com", "lead@example.com", "soc@example.com")
FRESH_ROUNDS = 5
BURST_SENDS = 20


class _Wan:
    """The server, the proxy, the test CA file and the app's Mailer for one benchmark run."""

    def __enter__(self):
        from tests.support.esmtp_server import EsmtpTestServer
        from tests.support.pki import TlsPki
        from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER

        self.user, self.password = SMTP_USER, SMTP_PASSWORD
        self._folder = tempfile.TemporaryDirectory(prefix="wan-bench-")
        tls = TlsPki(pathlib.Path(self._folder.name))
        self.ca_file, context = tls.ca_file, tls.context
        self.server = EsmtpTestServer(tls_context=context, require_starttls=True, auth=True).__enter__()
        self.proxy = DelayProxy(self.server.port, delay=WAN_DELAY).__enter__()
        return self

    def __exit__(self, *exc_info):
        POOL.close_all()
        self.proxy.__exit__(*exc_info)
        self.server.__exit__(*exc_info)
        self._folder.cleanup()

    def mailer(self, reuse):
        settings = app_settings(self.proxy.port, smtp_ssl_mode="starttls", smtp_ssl_cafile=self.ca_file,
                                smtp_user=self.user, smtp_password=self.password,
                                smtp_connection_reuse="true" if reuse else "false")
        rest = CountingSoarRest()
        request = templated_request(settings, rest)
        request.to = ", ".join(RECIPIENTS)
        return sample_mailer(settings, rest), request

    def raw_send(self, envelope_from, message):
        """What the original app and its peers do: one plain smtplib session per mail."""
        context = ssl.create_default_context(cafile=self.ca_file)
        with smtplib.SMTP("127.0.0.1", self.proxy.port, timeout=30) as smtp:
            smtp.starttls(context=context)
            smtp.login(self.user, self.password)
            smtp.sendmail(envelope_from, list(RECIPIENTS), message)


def _timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _fresh():
    with _Wan() as wan:
        mailer, request = wan.mailer(reuse=False)
        mailer.send(request)                       # warm-up: template compiled, modules loaded
        prepared = mailer.prepare(request)
        app_times, raw_times, app_flights, raw_flights = [], [], [], []
        for _ in range(FRESH_ROUNDS):              # interleaved, so both see the same machine load
            wan.proxy.reset()
            app_times.append(_timed(lambda: mailer.deliver(mailer.prepare(request))))
            app_flights.append(wan.proxy.flights)
            wan.proxy.reset()
            raw_times.append(_timed(lambda: wan.raw_send(prepared.envelope_from, prepared.message)))
            raw_flights.append(wan.proxy.flights)
    return median(app_times), median(raw_times), max(app_flights), max(raw_flights)


def _burst():
    with _Wan() as wan:
        mailer, request = wan.mailer(reuse=True)
        mailer.send(request)                       # warm-up, then start without a pooled session
        POOL.close_all()
        prepared = mailer.prepare(request)
        wan.proxy.reset()
        app = _timed(lambda: [mailer.send(request) for _ in range(BURST_SENDS)])
        app_connections, app_flights = wan.proxy.connections, wan.proxy.flights
        wan.proxy.reset()
        raw = _timed(lambda: [wan.raw_send(prepared.envelope_from, prepared.message) for _ in range(BURST_SENDS)])
        raw_connections, raw_flights = wan.proxy.connections, wan.proxy.flights
    return app, raw, (app_connections, app_flights), (raw_connections, raw_flights)


def _measure_fresh_ratio(figure):
    app, raw, app_flights, raw_flights = _fresh()
    return Figure(figure.name, figure.TARGET, measured=app / raw, detail=(
        "one fresh send, 3 recipients, {0:g} ms RTT: app {1:.0f} ms ({2} round trips), smtplib {3:.0f} ms "
        "({4} round trips), median of {5}").format(2000 * WAN_DELAY, app * 1000, app_flights, raw * 1000,
                                                   raw_flights, FRESH_ROUNDS))


def _measure_round_trips(figure):
    _, _, app_flights, raw_flights = _fresh()
    return Figure(figure.name, figure.TARGET, measured=float(app_flights), detail=(
        "client flights for one fresh STARTTLS + AUTH send to 3 recipients: app {0}, raw smtplib {1}").format(
            app_flights, raw_flights))


def _measure_burst_ratio(figure):
    app, raw, (app_connections, app_flights), (raw_connections, raw_flights) = _burst()
    return Figure(figure.name, figure.TARGET, measured=app / raw, detail=(
        "{0} sends in a row, {1:g} ms RTT: app {2:.0f} ms ({3} session(s), {4} round trips), smtplib {5:.0f} ms "
        "({6} sessions, {7} round trips)").format(BURST_SENDS, 2000 * WAN_DELAY, app * 1000, app_connections,
                                                  app_flights, raw * 1000, raw_connections, raw_flights))


wan_fresh_ratio = NamedFigure("wan_fresh_ratio", 0.65, _measure_fresh_ratio)
wan_burst_ratio = NamedFigure("wan_burst_ratio", 0.25, _measure_burst_ratio)
round_trips_fresh = NamedFigure("round_trips_fresh", 8, _measure_round_trips)
