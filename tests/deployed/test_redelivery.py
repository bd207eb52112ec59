# -*- coding: utf-8 -*-
"""A redelivered SOAR invocation sends the same Message-ID as its first delivery and says it was redelivered.

End to end: a replica is killed while the receiver holds its mail unanswered; the broker redelivers the
invocation to a replica started afterwards. Then the identity rules themselves, on circuits-like events.
"""

import signal
from types import SimpleNamespace

from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.message.addresses import parse_address
from fn_outbound_email.lib.soar.invocation import InvocationRegistry
from tests.support.circuits_process import SLOWNESS
from tests.support.slow_receiver import slow_receiver
from tests.support.soar_simulator import INCIDENT_ID

REPLY_TIMEOUT = 60 * SLOWNESS


def test_a_killed_replicas_invocation_is_sent_again_with_the_same_message_id(replicas, publisher):
    with slow_receiver(3.0) as receiver:
        [first] = replicas.start(1, receiver.port)
        correlation_id = publisher.invoke("send_email2", {
            "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": "redelivered",
            "mail_body": "sent twice"})
        first.wait_for("StatusMessage: Delivering <soar.")
        first.signal(signal.SIGKILL)
        assert first.wait_exit(30 * SLOWNESS) is not None
        [second] = replicas.start(1, receiver.port)
        [reply] = publisher.final_replies([correlation_id], REPLY_TIMEOUT)[correlation_id]

    results = reply["results"]
    assert results["success"] is True, results["reason"]
    assert results["content"]["redelivered"] is True
    copies = [mail.message for mail in receiver.messages if mail.message["Subject"] == "redelivered"]
    assert len(copies) == 2           # the first replica's copy reached the receiver before it died
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"] == results["content"]["message_id"]
    assert "Redelivery of SOAR message" in second.output()


def test_answered_invocations_were_acknowledged_and_are_not_run_again(replicas, publisher):
    # the acknowledgement goes out after the final reply (lib/soar/graceful_stop.py): it must go out all the
    # same, after a sent mail and after an error (a missing mail_to: resilient-circuits' exception path)
    with slow_receiver(0) as receiver:
        [first] = replicas.start(1, receiver.port)
        sent = publisher.invoke("send_email2", {
            "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": "answered once",
            "mail_body": "once"})
        failed = publisher.invoke("send_email2", {"mail_incident_id": INCIDENT_ID, "mail_body": "no recipient"})
        finals = publisher.final_replies([sent, failed], REPLY_TIMEOUT)
        assert finals[sent][0]["results"]["success"] is True and finals[failed][0]["message_type"] == 1
        first.signal(signal.SIGKILL)
        assert first.wait_exit(30 * SLOWNESS) is not None
        # a marker invocation after them: once the next replica has answered it, it would have had the
        # others too, had they still been on the queue
        marker = publisher.invoke("send_email2", {
            "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": "marker",
            "mail_body": "marker"})
        [second] = replicas.start(1, receiver.port)
        assert publisher.final_replies([marker], REPLY_TIMEOUT)[marker]
    subjects = [mail.message["Subject"] for mail in receiver.messages]
    assert subjects.count("answered once") == 1
    for correlation_id in (sent, failed):
        assert len([reply for reply in publisher.replies(correlation_id) if reply.get("complete")]) == 1
    assert "Redelivery of SOAR message" not in second.output()


def function_event(message_id, redelivered=False, workflow_instance=9001, function="send_email2"):
    headers = {"message-id": message_id, "destination": "/queue/actions.201.email_outbound"}
    if redelivered:
        headers["redelivered"] = "true"
    message = {"function": {"name": function}, "workflow_instance": {"workflow_instance_id": workflow_instance},
               "inputs": {}}
    return SimpleNamespace(headers=headers, message=message, test=False)


def test_the_message_id_is_the_invocations_own():
    registry = InvocationRegistry()
    first = registry.note(function_event("ID:broker-1:1"))
    again = InvocationRegistry().note(function_event("ID:broker-1:1", redelivered=True))
    assert not first.redelivered and again.redelivered
    assert first.message_id_local_part == again.message_id_local_part
    others = {InvocationRegistry().note(event).message_id_local_part for event in (
        function_event("ID:broker-1:2"), function_event("ID:broker-1:1", workflow_instance=9002),
        function_event("ID:broker-1:1", function="send_email"))}
    assert len(others) == 3 and first.message_id_local_part not in others
    sender = parse_address("soar@example.com", "mail_from")
    message_id = compose.new_message_id(sender, first.message_id_local_part)
    assert compose.normalize_message_id(message_id, "mail_message_id") == message_id


def test_the_same_message_id_seen_again_is_a_redelivery_without_the_header():
    registry = InvocationRegistry()
    registry.note(function_event("ID:broker-1:7"))
    assert registry.note(function_event("ID:broker-1:7")).redelivered


def test_the_function_takes_its_invocation_once_and_test_messages_have_none():
    registry = InvocationRegistry()
    event = function_event("ID:broker-1:8")
    noted = registry.note(event)
    assert registry.take(event.message) is noted and registry.take(event.message) is None
    assert registry.note(SimpleNamespace(headers={}, message={}, test=True)) is None


def test_a_mail_message_id_given_by_the_caller_wins():
    from dataclasses import replace

    from fn_outbound_email.lib.mailer import MailRequest
    from tests.support.config_section import mailer
    sender = mailer(25, from_email_address="soar@example.com")
    request = MailRequest(incident_id=INCIDENT_ID, to="analyst@example.com", body="text",
                          message_id="<given@example.com>", message_id_local_part="soar.0123abcd")
    assert sender.prepare(request).message_id == "<given@example.com>"
    assert sender.prepare(replace(request, message_id=None)).message_id == "<soar.0123abcd@example.com>"
