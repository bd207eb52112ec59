# -*- coding: utf-8 -*-
"""Replicas of `resilient-circuits run` on one message destination: every invocation is answered once and
nothing is lost when one replica dies (SIGKILL) or is stopped (SIGTERM) while its sends are in flight.

The receiver answers DATA a moment after keeping each mail (tests/support/slow_receiver.py), so a replica
stopped mid-run has sends in that window. After SIGKILL the broker gives its unacknowledged invocations to the
other replica: a mail the receiver already had is sent again, with the same Message-ID, and its result says it
was a redelivery. After SIGTERM the replica finishes what it has in flight first: no mail twice.
"""

import signal
from collections import defaultdict

import pytest

from tests.support.circuits_process import SLOWNESS
from tests.support.slow_receiver import slow_receiver
from tests.support.soar_simulator import INCIDENT_ID

INVOCATIONS = 20
REPLY_TIMEOUT = 90 * SLOWNESS
DATA_DELAY = 1.0


def invoke_all(publisher, tag):
    """INVOCATIONS send_email2 invocations, each with a subject of its own: {correlation id: subject}."""
    subjects = {}
    for number in range(INVOCATIONS):
        subject = "{0} {1:02d}".format(tag, number)
        correlation_id = publisher.invoke("send_email2", {
            "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": subject,
            "mail_body": "invocation {0}".format(number)})
        subjects[correlation_id] = subject
    return subjects


def mails_by_subject(receiver, subjects):
    mails = defaultdict(list)
    for mail in receiver.messages:
        subject = mail.message["Subject"]
        if subject in subjects.values():
            mails[subject].append(mail.message)
    return mails


def answered(publisher, subjects, once=True):
    """{correlation id: the results of its last final reply}; each invocation has one (``once``), or one more
    for a redelivery (a replica killed after its reply, before its acknowledgement)."""
    finals = publisher.final_replies(list(subjects), REPLY_TIMEOUT)
    missing = [subjects[cid] for cid, replies in finals.items() if not replies]
    assert not missing, "no final reply for {0} ({1})".format(missing, publisher.errors)
    repeated = {subjects[cid]: replies for cid, replies in finals.items() if len(replies) > 1}
    assert not (once and repeated), "more than one final reply for {0}".format(list(repeated))
    assert all(replies[-1]["results"]["content"].get("redelivered") for replies in repeated.values())
    failed = {subjects[cid]: replies[-1]["results"]["reason"] for cid, replies in finals.items()
              if not replies[-1]["results"]["success"]}
    assert not failed
    return {cid: replies[-1]["results"] for cid, replies in finals.items()}


def test_two_replicas_send_twenty_mails_exactly_once(replicas, publisher):
    with slow_receiver(0) as receiver:
        first, second = replicas.start(2, receiver.port)
        subjects = invoke_all(publisher, "replicas")
        results = answered(publisher, subjects)
        mails = mails_by_subject(receiver, subjects)
        assert sorted(mails) == sorted(subjects.values())
        assert all(len(copies) == 1 for copies in mails.values()), {s: len(c) for s, c in mails.items()}
        assert not any(result["content"].get("redelivered") for result in results.values())
        # the broker shared the work: both replicas sent
        for replica in (first, second):
            assert "Sent <soar." in replica.output()


@pytest.mark.parametrize("signo", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_replica_stopped_mid_run_loses_nothing(replicas, publisher, signo):
    with slow_receiver(DATA_DELAY) as receiver:
        stopped, survivor = replicas.start(2, receiver.port)
        subjects = invoke_all(publisher, "stopped-{0}".format(signo.name))
        # its sends are in flight: the receiver holds mails it has not acknowledged yet
        stopped.wait_for("StatusMessage: Delivering <soar.")
        stopped.signal(signo)
        results = answered(publisher, subjects, once=signo == signal.SIGTERM)
        mails = mails_by_subject(receiver, subjects)

        # nothing lost: every invocation's mail arrived, every copy of one with one Message-ID
        assert sorted(mails) == sorted(subjects.values())
        for cid, subject in subjects.items():
            assert {copy["Message-ID"] for copy in mails[subject]} == {results[cid]["content"]["message_id"]}
        copies = {subject: len(found) for subject, found in mails.items()}
        if signo == signal.SIGTERM:
            # a graceful stop: the sends in flight finished and were answered before the replica exited
            assert stopped.wait_exit(30 * SLOWNESS) is not None, stopped.output()[-5000:]
            assert "All invocations in flight have finished and been answered" in stopped.output()
            assert all(count == 1 for count in copies.values()), copies
        else:
            # a mail sent twice is a redelivery, and its result says so
            for cid, subject in subjects.items():
                if copies[subject] > 1:
                    assert results[cid]["content"].get("redelivered") is True
            assert "Redelivery of SOAR message" in survivor.output() or all(c == 1 for c in copies.values())
