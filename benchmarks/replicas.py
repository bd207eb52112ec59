# -*- coding: utf-8 -*-
"""python -m benchmarks.replicas [--json]: `resilient-circuits run` replicas as deployed (README "Scaling out").

Real parts as in tests/deployed/: ActiveMQ (STOMP over TLS), the SOAR simulator, replicas started as processes.

* mails per second with 1 and with 2 replicas (num_workers 10 each), INVOCATIONS send_email2 invocations
  through a relay 50 ms away (benchmarks/wan_proxy.py in front of the local receiver), from the first publish
  to the last final reply;
* duplicates per kill, worst case: 20 invocations over 2 replicas, one replica stopped while all its sends
  wait for the receiver's answer to DATA (tests/support/slow_receiver.py), with SIGKILL and with SIGTERM
  (graceful); the extra copies the receiver got, averaged over KILL_ROUNDS;
* duplicates per kill, in a stream: INVOCATIONS invocations through the 50 ms relay, one replica killed
  (SIGKILL) once it has sent its first mail.
"""

import argparse
import contextlib
import json
import pathlib
import signal
import tempfile
import time
from collections import Counter

from benchmarks.wan_proxy import DelayProxy

INVOCATIONS = 40
KILL_INVOCATIONS = 20
KILL_ROUNDS = 3
WAN_DELAY = 0.025           # one way: a 50 ms round trip
DATA_DELAY = 1.0


class _Deployment:
    def __enter__(self):
        from tests.support.pki import TlsPki
        from tests.support.smtp_server import free_port
        from tests.support.activemq import ActiveMqBroker
        from tests.support.circuits_process import Replicas
        from tests.support.soar_simulator import ORG_ID, SoarSimulator
        from tests.support.stomp_publisher import StompPublisher
        self._folder = tempfile.TemporaryDirectory(prefix="replicas-bench-")
        self.folder = pathlib.Path(self._folder.name)
        self.pki = TlsPki(self.folder)
        self.broker = ActiveMqBroker(self.folder, ca=self.pki.ca).__enter__()
        self.soar = SoarSimulator(self.pki.context, free_port()).__enter__()
        self.publisher = StompPublisher(self.broker.port, self.pki.ca_file, ORG_ID).__enter__()
        self._replicas = Replicas(self.folder, self.broker, self.soar, self.pki.ca_file)
        return self

    def __exit__(self, *exc_info):
        self._replicas.stop_all()
        self.publisher.__exit__(*exc_info)
        self.soar.__exit__(*exc_info)
        self.broker.__exit__(*exc_info)
        self._folder.cleanup()

    def replicas(self, count, smtp_port):
        return self._replicas.start(count, smtp_port)

    def invoke(self, count, tag):
        from tests.support.soar_simulator import INCIDENT_ID
        return {self.publisher.invoke("send_email2", {
            "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID,
            "mail_subject": "{0} {1}".format(tag, number), "mail_body": "benchmark"}): "{0} {1}".format(tag, number)
            for number in range(count)}


def _stop(processes):
    for process in processes:
        process.stop()


def mails_per_second(deployment, replica_count):
    from tests.support.smtp_server import SmtpTestServer
    with SmtpTestServer() as receiver, DelayProxy(receiver.port, delay=WAN_DELAY) as relay:
        processes = deployment.replicas(replica_count, relay.port)
        try:
            deployment.publisher.final_replies(list(deployment.invoke(2, "warm-up {0}".format(replica_count))), 120)
            started = time.perf_counter()
            subjects = deployment.invoke(INVOCATIONS, "throughput {0}".format(replica_count))
            finals = deployment.publisher.final_replies(list(subjects), 300)
            elapsed = time.perf_counter() - started
        finally:
            _stop(processes)
    answered = sum(1 for replies in finals.values() if replies)
    return answered / elapsed, answered


def _kill_rounds(deployment, receiver_factory, count, wait_text, signo, tag):
    """KILL_ROUNDS rounds: 2 replicas, ``count`` invocations, one replica sent ``signo`` once its log shows
    ``wait_text``; (mean extra copies per round, extra copies of each round, invocations with no mail or no
    final reply)."""
    duplicates, lost = [], 0
    for round_number in range(KILL_ROUNDS):
        with receiver_factory() as (receiver, port):
            stopped, survivor = deployment.replicas(2, port)
            try:
                subjects = deployment.invoke(count, "{0} {1}".format(tag, round_number))
                stopped.wait_for(wait_text)
                stopped.signal(signo)
                finals = deployment.publisher.final_replies(list(subjects), 120)
            finally:
                _stop([stopped, survivor])
            copies = Counter(mail.message["Subject"] for mail in receiver.messages)
            duplicates.append(sum(copies[subject] - 1 for subject in subjects.values() if copies[subject]))
            lost += sum(1 for cid, subject in subjects.items() if not copies[subject] or not finals[cid])
    return sum(duplicates) / len(duplicates), duplicates, lost


@contextlib.contextmanager
def _slow_receiver():
    from tests.support.slow_receiver import slow_receiver
    with slow_receiver(DATA_DELAY) as receiver:
        yield receiver, receiver.port


@contextlib.contextmanager
def _relayed_receiver():
    from tests.support.smtp_server import SmtpTestServer
    with SmtpTestServer() as receiver, DelayProxy(receiver.port, delay=WAN_DELAY) as relay:
        yield receiver, relay.port


def duplicates_per_kill(deployment, signo):
    """All of the stopped replica's sends wait for the answer to DATA when it gets ``signo``."""
    return _kill_rounds(deployment, _slow_receiver, KILL_INVOCATIONS, "StatusMessage: Delivering <soar.", signo,
                        "kill {0}".format(signo.name))


def duplicates_per_kill_in_stream(deployment):
    """SIGKILL mid-stream through the 50 ms relay, once the replica has sent its first mail."""
    return _kill_rounds(deployment, _relayed_receiver, INVOCATIONS, "Sent <soar.", signal.SIGKILL, "stream kill")


def measure():
    with _Deployment() as deployment:
        one, answered_one = mails_per_second(deployment, 1)
        two, answered_two = mails_per_second(deployment, 2)
        kill_mean, kill_rounds, kill_lost = duplicates_per_kill(deployment, signal.SIGKILL)
        term_mean, term_rounds, term_lost = duplicates_per_kill(deployment, signal.SIGTERM)
        stream_mean, stream_rounds, stream_lost = duplicates_per_kill_in_stream(deployment)
    return {"mails_per_second_1_replica": round(one, 2), "mails_per_second_2_replicas": round(two, 2),
            "scaling_2_over_1": round(two / one, 2), "answered": [answered_one, answered_two],
            "invocations": INVOCATIONS, "relay_rtt_ms": 2000 * WAN_DELAY,
            "duplicates_per_sigkill": kill_mean, "sigkill_rounds": kill_rounds, "lost_after_sigkill": kill_lost,
            "duplicates_per_sigterm": term_mean, "sigterm_rounds": term_rounds, "lost_after_sigterm": term_lost,
            "duplicates_per_sigkill_in_stream": stream_mean, "stream_rounds": stream_rounds,
            "lost_after_sigkill_in_stream": stream_lost,
            "kill_invocations": KILL_INVOCATIONS, "data_delay_s": DATA_DELAY}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas", description=__doc__.split(":", 1)[1])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    figures = measure()
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print("{0}: {1}".format(name, value))


if __name__ == "__main__":
    main()
