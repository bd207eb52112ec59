# -*- coding: utf-8 -*-
"""Plays SOAR's side of STOMP: publishes function messages shaped like SOAR's and reads the replies.

A message goes to ``actions.<org>.<destination>`` with the headers SOAR sets (``reply-to``, ``correlation-id``,
``Co3MessagePayload: FunctionDataDTO``, ``Co3ContextToken``) and a body with ``function``, ``inputs`` and
``workflow_instance``. resilient-circuits answers on the reply-to queue: status messages (``complete`` false)
and one final reply (``complete`` true) per invocation, which ``final_replies`` waits for (bounded).
"""

import json
import ssl
import threading
import time
import uuid
from collections import defaultdict

import stomp

REPLY_QUEUE = "acks.{0}.fn_outbound_email_tests"


class _ReplyListener(stomp.ConnectionListener):
    def __init__(self, publisher):
        self._publisher = publisher

    def on_message(self, frame):
        self._publisher._take_reply(frame)

    def on_error(self, frame):
        self._publisher.errors.append("ERROR frame: {0} {1}".format(frame.headers, frame.body))

    def on_disconnected(self):
        self._publisher.errors.append("disconnected from the broker")


class StompPublisher:
    """``with StompPublisher(port, ca_file, org_id) as soar: soar.invoke(...); soar.final_replies(ids, timeout)``.

    The broker's certificate is checked against ``ca_file`` (stomp.py verifies when given ca_certs).
    """

    def __init__(self, port, ca_file, org_id, destination="email_outbound"):
        self.org_id = org_id
        self.queue = "actions.{0}.{1}".format(org_id, destination)
        self.reply_queue = REPLY_QUEUE.format(org_id) + "." + uuid.uuid4().hex[:8]
        self._connection = stomp.Connection12([("127.0.0.1", port)], heartbeats=(0, 0), timeout=30)
        self._connection.set_ssl(for_hosts=[("127.0.0.1", port)], ca_certs=ca_file,
                                 ssl_version=ssl.PROTOCOL_TLS_CLIENT)
        self._connection.set_listener("replies", _ReplyListener(self))
        self._replies = defaultdict(list)          # correlation-id -> [reply dict, ...]
        self._changed = threading.Condition()
        self._workflow_instance = 9000
        self.errors = []                           # what went wrong on the connection, for failure messages

    def __enter__(self):
        self._connection.connect("soar-simulator", "not-checked", wait=True)
        self._connection.subscribe(self.reply_queue, id="replies", ack="auto")
        return self

    def __exit__(self, *exc_info):
        if self._connection.is_connected():
            self._connection.disconnect()

    def _take_reply(self, frame):
        # an exception here would end stomp.py's receiver thread and with it the connection: note it instead
        try:
            reply = json.loads(frame.body)
        except (TypeError, ValueError) as err:
            self.errors.append("unreadable reply {0!r}: {1}".format(frame.body[:200], err))
            return
        with self._changed:
            self._replies[frame.headers.get("correlation-id")].append(reply)
            self._changed.notify_all()

    def invoke(self, function_name, inputs, workflow_instance_id=None):
        """Publish one function invocation; returns its correlation id."""
        if workflow_instance_id is None:
            self._workflow_instance += 1
            workflow_instance_id = self._workflow_instance
        correlation_id = "invocation-{0}".format(uuid.uuid4().hex)
        body = {
            "function": {"id": 1, "name": function_name, "display_name": function_name},
            "inputs": inputs,
            "workflow_instance": {"workflow_instance_id": workflow_instance_id,
                                  "workflow": {"programmatic_name": "example_send_email", "name": "Example"}},
            "principal": {"id": 1, "type": "user", "name": "analyst@example.com", "display_name": "Analyst"},
            "object": {"id": inputs.get("mail_incident_id"), "type_name": "incident", "name": "Phishing wave"},
        }
        headers = {"reply-to": self.reply_queue, "correlation-id": correlation_id,
                   "Co3MessagePayload": "FunctionDataDTO", "Co3ContextToken": "context-" + correlation_id,
                   "persistent": "true"}
        self._connection.send(self.queue, json.dumps(body), headers=headers)
        return correlation_id

    def replies(self, correlation_id):
        with self._changed:
            return list(self._replies.get(correlation_id, ()))

    def final_replies(self, correlation_ids, timeout):
        """{correlation id: [final replies]} once each id has one (or the timeout passed: some are missing)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                finals = {cid: [reply for reply in self._replies.get(cid, ()) if reply.get("complete")]
                          for cid in correlation_ids}
                left = deadline - time.monotonic()
                if all(finals.values()) or left <= 0:
                    return finals
                self._changed.wait(min(left, 0.5))
