# -*- coding: utf-8 -*-
"""transport = graph over a simulated WAN, side by side with pooled SMTP over the same link.

The local Graph endpoint (HTTPS, tests/support/mail_api_servers.py) sits behind the delay proxy of
benchmarks/wan_proxy.py (WAN_DELAY each way, 50 ms round trips by default), as the STARTTLS + AUTH SMTP server of
benchmarks/wan.py does. The token endpoint is reached directly: a token is fetched once per lifetime (an hour),
so it is not part of a send. Each side sends BURST_SENDS templated mails in a row after a warm-up send, the
Graph side on its kept-alive HTTPS connection, the SMTP side on its pooled session; both are the app's own code.

* graph_wan_ratio: time per Graph send / time per pooled SMTP send;
* graph_round_trips: client flights per Graph send (the proxy counts them), next to pooled SMTP's.
"""

import pathlib
import tempfile
import time

from benchmarks.common import CountingSoarRest, Figure, NamedFigure, app_settings, templated_request
from benchmarks.wan import BURST_SENDS, WAN_DELAY, _Wan
from benchmarks.wan_proxy import DelayProxy
from fn_outbound_email.lib.delivery.smtp.pool import POOL


def _graph_burst():
    """(seconds per send, client flights per send, connections) for Graph through the delay proxy."""
    from resilient_lib import RequestsCommon

    from fn_outbound_email.lib.mailer import Mailer
    from fn_outbound_email.lib.settings import SECTION
    from fn_outbound_email.lib.soar.client import SoarClient
    from tests.support.pki import TlsPki
    from tests.support.mail_api_apps import MailApiSetup

    with tempfile.TemporaryDirectory(prefix="wan-graph-") as folder:
        tls = TlsPki(pathlib.Path(folder))
        with MailApiSetup("graph", tls, pathlib.Path(folder)) as graph, \
                DelayProxy(graph.server.port, delay=WAN_DELAY) as proxy:
            url = "https://127.0.0.1:{0}".format(proxy.port)
            graph.server.serve_as(url)
            opts = graph.opts(graph_url=url, smtp_conn_timeout=30)
            rest = CountingSoarRest()
            mailer = Mailer(app_settings(1, **opts[SECTION]), SoarClient(rest),
                            requests_common=RequestsCommon(opts, opts[SECTION]))
            request = templated_request(mailer._settings, rest)
            mailer.send(request)                      # warm-up: token, TLS connection, template compiled
            proxy.reset()
            started = time.perf_counter()
            for _ in range(BURST_SENDS):
                mailer.send(request)
            elapsed = time.perf_counter() - started
            assert len(graph.server.messages) == BURST_SENDS + 1
            return elapsed / BURST_SENDS, proxy.flights / BURST_SENDS, proxy.connections


def _smtp_burst():
    """(seconds per send, client flights per send, sessions) for pooled SMTP through the delay proxy."""
    with _Wan() as wan:
        mailer, request = wan.mailer(reuse=True)
        request.to = templated_request(mailer._settings, CountingSoarRest()).to     # one recipient, as Graph's
        mailer.send(request)                          # warm-up: the session is pooled after it
        wan.proxy.reset()
        started = time.perf_counter()
        for _ in range(BURST_SENDS):
            mailer.send(request)
        elapsed = time.perf_counter() - started
        POOL.close_all()
        return elapsed / BURST_SENDS, wan.proxy.flights / BURST_SENDS, wan.proxy.connections


def _measure(figure):
    graph_seconds, graph_flights, graph_connections = _graph_burst()
    smtp_seconds, smtp_flights, smtp_connections = _smtp_burst()
    detail = ("{0} sends in a row after a warm-up, {1:g} ms RTT: graph {2:.0f} ms/send ({3:.1f} round trips/send, "
              "{4} new connection(s)), pooled SMTP {5:.0f} ms/send ({6:.1f} round trips/send, {7} new "
              "session(s))").format(BURST_SENDS, 2000 * WAN_DELAY, graph_seconds * 1000, graph_flights,
                                    graph_connections, smtp_seconds * 1000, smtp_flights, smtp_connections)
    measured = graph_seconds / smtp_seconds if figure.name == "graph_wan_ratio" else graph_flights
    return Figure(figure.name, figure.TARGET, measured=measured, detail=detail)


# both take one round trip per send since pooled SMTP pipelines its RSET with the transaction (issue 19): the
# target is that Graph is no slower than pooled SMTP (it was 0.8 while SMTP's RSET cost a round trip of its own)
graph_wan_ratio = NamedFigure("graph_wan_ratio", 1.1, _measure)
graph_round_trips = NamedFigure("graph_round_trips", 1, _measure)
