# -*- coding: utf-8 -*-
"""Who asked for a send: the SOAR function invocation behind a function call, and whether it is a redelivery.

SOAR delivers each function invocation over STOMP at least once: a message that an app replica took but
never acknowledged (it died, or its connection dropped) is delivered again, to it or to another replica,
with the same STOMP ``message-id`` and the header ``redelivered: true``. The mail a redelivery sends must be
recognisable as the same mail, so its Message-ID is derived from the invocation's identity (org, workflow
instance, function, message id) instead of being random.

resilient-circuits hands a function only the message body (``get_fn_msg()``); the STOMP headers stay on the
circuits event. ``InvocationHandlers`` adds a handler that runs just before the function's own handler, on
the event loop, and notes the invocation for that message body, where the function thread picks it up.
"""

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Optional

from resilient_circuits import handler

from fn_outbound_email.lib.soar.graceful_stop import GRACEFUL_STOP

LOG = logging.getLogger(__name__)

# how many invocations (and message ids seen) are remembered: far more than num_workers (at most 500) ever
# holds at once; an entry the function never takes (its handler failed first) is dropped in turn
REMEMBERED = 2000


@dataclass(frozen=True)
class Invocation:
    """One delivery of a function message."""
    org: str
    workflow_instance: str
    function: str
    message_id: str
    redelivered: bool

    @property
    def message_id_local_part(self):
        """The left part of the derived Message-ID: the same for every delivery of this invocation."""
        identity = "\n".join((self.org, self.workflow_instance, self.function, self.message_id))
        return "soar." + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:40]


def _org_of(headers, fallback):
    """The org id from the destination (``/queue/actions.<org>.<destination>``), else ``fallback``."""
    destination = str(headers.get("destination") or "").rsplit("/", 1)[-1].split(".")
    return destination[1] if len(destination) >= 3 and destination[0] == "actions" else str(fallback or "")


def _workflow_instance_of(message):
    """The workflow (or playbook) instance id of a function message, '' when it has none."""
    for key, id_key in (("workflow_instance", "workflow_instance_id"), ("playbook_instance", "playbook_instance_id"),
                        ("playbook_instance", "id")):
        instance = message.get(key)
        if isinstance(instance, dict) and instance.get(id_key) is not None:
            return "{0}:{1}".format(key, instance[id_key])
    return ""


class InvocationRegistry:
    """Function message body (by identity) -> Invocation, and the STOMP message ids this process has seen."""

    def __init__(self, remembered=REMEMBERED):
        self._lock = threading.Lock()
        self._pending = OrderedDict()       # id(message dict) -> (message dict, Invocation)
        self._seen = OrderedDict()          # STOMP message-id -> None
        self._remembered = remembered

    def note(self, event, org_fallback=None):
        """Record the invocation of a circuits FunctionMessage event; None for one without a STOMP message id
        (pytest-resilient-circuits' test messages)."""
        headers = getattr(event, "headers", None) or {}
        message = getattr(event, "message", None)
        message_id = headers.get("message-id")
        if not message_id or not isinstance(message, dict) or getattr(event, "test", False):
            return None
        with self._lock:
            seen_before = message_id in self._seen
            self._seen[message_id] = None
            self._seen.move_to_end(message_id)
            invocation = Invocation(
                org=_org_of(headers, org_fallback), workflow_instance=_workflow_instance_of(message),
                function=str((message.get("function") or {}).get("name") or ""), message_id=str(message_id),
                redelivered=str(headers.get("redelivered", "")).lower() == "true" or seen_before)
            self._pending[id(message)] = (message, invocation)
            for entries in (self._seen, self._pending):
                while len(entries) > self._remembered:
                    entries.popitem(last=False)
        if invocation.redelivered:
            LOG.warning("Redelivery of SOAR message %s (%s, %s): the mail keeps the Message-ID of the first "
                        "delivery", message_id, invocation.function, invocation.workflow_instance)
        return invocation

    def take(self, message) -> Optional[Invocation]:
        """The invocation noted for ``message`` (the function's get_fn_msg()), once; None when there is none."""
        with self._lock:
            entry = self._pending.pop(id(message), None)
        return entry[1] if entry and entry[0] is message else None


REGISTRY = InvocationRegistry()


def current_invocation(component):
    """The Invocation of the function call running on this thread of ``component`` (None outside SOAR's STOMP)."""
    getter = getattr(component, "get_fn_msg", None)
    message = getter() if getter else None
    return REGISTRY.take(message) if message is not None else None


def invocation_handlers(function_name):
    """A mixin for a function component: notes each invocation of ``function_name`` before the function runs,
    holds back new invocations while a graceful stop drains, takes part in that stop, and sends an invocation's
    acknowledgement after its final reply (graceful_stop.py)."""

    class InvocationHandlers(object):
        # priority above the @app_function handler's 0: runs first, on the same event
        @handler(function_name, channel="functions." + function_name, priority=10)
        def _invocation_arrived(self, event, *args, **kwargs):
            if not GRACEFUL_STOP.admit(event):
                return
            REGISTRY.note(event, org_fallback=(getattr(self, "opts", None) or {}).get("org_id"))

        # before resilient-circuits' own signal handlers (priority 0), which exit at once
        @handler("signal", channel="*", priority=100)
        def _stop_gracefully(self, event, signo, stack):
            GRACEFUL_STOP.on_signal(event, signo, getattr(self, "opts", None) or {}, self)

        # before the STOMP component's ack (priority 0): an invocation's Ack waits for its final reply
        @handler("Ack", channel="*", priority=10)
        def _ack_after_reply(self, event, *args, **kwargs):
            GRACEFUL_STOP.hold_ack(event, self)

        # after the STOMP component's send (priority 0): the reply has gone out
        @handler("Send", channel="*", priority=-100)
        def _reply_sent(self, event, *args, **kwargs):
            GRACEFUL_STOP.reply_sent(event)

    return InvocationHandlers


def with_invocation(request, invocation):
    """``request`` (a MailRequest) with the invocation's Message-ID local part; unchanged without an invocation.
    A mail_message_id the caller gave still wins (mailer.prepare)."""
    if invocation is None:
        return request
    return replace(request, message_id_local_part=invocation.message_id_local_part)


def redelivery_note(invocation):
    """What a function's result content adds for a redelivery ({"redelivered": True}); nothing otherwise, so
    the result of a first delivery keeps its documented shape."""
    return {"redelivered": True} if invocation is not None and invocation.redelivered else {}
