# -*- coding: utf-8 -*-
"""Load over Microsoft Graph: 200 sends from 4 threads through one Mailer (resilient-circuits num_workers > 1)
to the local Graph endpoint, which checks every request's token.

Each mail must arrive exactly once, to its recipient, and the token endpoint must be asked once per token
lifetime, however the threads race for the first token and for its replacement.
"""

import collections
from concurrent.futures import ThreadPoolExecutor

import pytest
from resilient_lib import RequestsCommon

from fn_outbound_email.lib.auth import oauth2
from fn_outbound_email.lib.auth.oauth2 import OAuth2TokenProvider
from fn_outbound_email.lib.delivery.graph import GraphTransport
from fn_outbound_email.lib.mailer import Mailer, MailRequest
from fn_outbound_email.lib.settings import SECTION, load_settings
from tests.auth.test_oauth2 import Clock
from tests.support.mail_api_apps import MailApiSetup
from tests.support.soar_mock import INCIDENT_ID

SENDS = 200
THREADS = 4


@pytest.fixture
def graph(tls_pki, tmp_path, monkeypatch):
    monkeypatch.setattr(oauth2, "_caches", {})
    with MailApiSetup("graph", tls_pki, tmp_path) as setup:
        yield setup


def test_200_sends_over_4_threads_none_lost_none_twice_one_token_per_lifetime(graph):
    opts = graph.opts()
    settings = load_settings(opts)
    clock = Clock()
    requests_common = RequestsCommon(opts, opts[SECTION])
    transport = GraphTransport(settings, OAuth2TokenProvider(settings.oauth2, requests_common, clock=clock),
                               requests_common)
    mailer = Mailer(settings, soar=None, transport=transport)
    graph.oauth.delay = 0.05          # the first callers of each lifetime race while the token request is open

    def send(number):
        return mailer.send(MailRequest(incident_id=INCIDENT_ID, to="user{0}@example.com".format(number),
                                       subject="Load {0}".format(number), body="Mail number {0}".format(number)))

    def run(numbers):
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            return list(pool.map(send, numbers))

    outcomes = run(range(SENDS // 2))
    assert len(graph.oauth.token_requests) == 1
    clock.now += 3600                 # the first token has expired
    outcomes += run(range(SENDS // 2, SENDS))
    assert len(graph.oauth.token_requests) == 2

    assert [outcome.accepted for outcome in outcomes] == [["user{0}@example.com".format(n)] for n in range(SENDS)]
    received = collections.Counter((m.rcpt_tos[0], m.message["Subject"]) for m in graph.server.messages)
    expected = collections.Counter(("user{0}@example.com".format(n), "Load {0}".format(n)) for n in range(SENDS))
    assert received == expected                       # none lost, none twice, each to its recipient
    assert len(graph.server.requests) == SENDS        # no retry was needed, none was made
    tokens = {headers["Authorization"] for _, _, headers, _ in graph.server.requests}
    assert len(tokens) == 2
