# -*- coding: utf-8 -*-
"""A graceful SIGTERM for `resilient-circuits run`: finish the sends in flight, take no new ones, then exit.

resilient-circuits exits on SIGTERM at once: sends still running are cut off and their messages, never
acknowledged, go to another replica, which sends a mail that may already have gone out. Here the first
SIGTERM starts a drain instead: invocations that arrive from then on are held back (neither run nor
acknowledged: the broker gives them to another replica when this one has gone), the ones in flight run on
until their final reply has been sent, and then, or after smtp_conn_timeout at the latest, the process
stops the way resilient-circuits always does. A second SIGTERM, or SIGINT (Ctrl-C), stops at once.

An invocation is in flight from its message's arrival until its final reply has been sent. resilient-circuits
acknowledges the message just before it sends that reply; a replica that dies between the two leaves an
invocation that SOAR never hears about again (acknowledged, so never redelivered; no answer). So the
acknowledgement of an invocation in flight is held until its final reply has gone out: a replica that dies
in between then leaves it to be delivered again (a mail with the same Message-ID, lib/soar/invocation.py)
instead of leaving SOAR waiting.
"""

import json
import logging
import signal
import threading
import time

from circuits.core.events import signal as circuits_signal
from resilient_circuits.stomp_events import Ack

LOG = logging.getLogger(__name__)


def _drain_timeout(opts):
    """smtp_conn_timeout of app.config (the bound of one send's SMTP session)."""
    from fn_outbound_email.lib.settings import load_settings
    try:
        return load_settings(opts).timeout
    except Exception:  # noqa: BLE001 -- a broken config must not stop the process from stopping
        from fn_outbound_email.lib.settings import DEFAULT_TIMEOUT
        return DEFAULT_TIMEOUT


def _is_final_reply(send_event):
    """A Send of resilient-circuits carrying the last reply of an invocation (``complete`` true)."""
    try:
        return bool(json.loads(getattr(send_event, "body", "") or "{}").get("complete"))
    except (TypeError, ValueError, AttributeError):
        return False


class GracefulStop:
    """Process-wide state of the drain (one per process: SIGTERM is process-wide)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._in_flight = set()          # STOMP message ids whose final reply has not been sent
        self._held_acks = {}             # STOMP message id -> (component, Ack event) held until the reply is out
        self.draining = False
        self._exiting = False
        self._root = None                # the circuits root manager, which fires the final signal event

    def admit(self, event):
        """Called for each function message before the function runs: False (and the event held back) while
        draining, else True, the message counted in flight."""
        message_id = (getattr(event, "headers", None) or {}).get("message-id")
        if not message_id or getattr(event, "test", False):
            return True
        with self._lock:
            if self.draining:
                LOG.info("Stopping: SOAR message %s is left for another replica (not run, not acknowledged)",
                         message_id)
                # no success event: resilient-circuits then neither acknowledges nor answers the message
                event.success = False
                event.stop()
                return False
            self._in_flight.add(message_id)
            return True

    def hold_ack(self, ack_event, component):
        """Called for each Ack before the STOMP component sends it: the Ack of an invocation in flight is
        stopped and kept until its final reply has been sent (``reply_sent`` fires it again then)."""
        message_id = getattr(ack_event, "message_id", None)
        with self._lock:
            if message_id not in self._in_flight or message_id in self._held_acks:
                return
            self._held_acks[message_id] = (component, ack_event)
        ack_event.stop()

    def reply_sent(self, send_event):
        """Called after the STOMP component has sent a reply: a final one ends its invocation's flight and
        releases its held Ack."""
        if getattr(getattr(send_event, "value", None), "errors", False) or not _is_final_reply(send_event):
            return
        message_id = getattr(send_event, "message_id", None)
        with self._lock:
            held = self._held_acks.pop(message_id, None)
        if held is not None:
            component, ack_event = held
            component.fire(Ack(ack_event.frame, message_id=message_id), *ack_event.channels)
        with self._lock:
            # after the Ack was fired: a stop that waits for this reaches the event loop after it
            self._in_flight.discard(message_id)
            self._lock.notify_all()

    def on_signal(self, event, signo, opts, component):
        """The first SIGTERM starts the drain (the signal goes no further); any later signal passes on."""
        if signo != signal.SIGTERM:
            return
        with self._lock:
            if self._exiting or self.draining:
                self._exiting = True
                return
            self.draining = True
            self._root = component.root
            timeout = _drain_timeout(opts)
            LOG.info("SIGTERM: taking no new invocations; waiting up to %s s (smtp_conn_timeout) for %s in flight",
                     timeout, len(self._in_flight))
        event.stop()
        threading.Thread(target=self._drain, args=(timeout,), name="graceful-stop", daemon=True).start()

    def _drain(self, timeout):
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight and time.monotonic() < deadline:
                self._lock.wait(min(0.2, max(deadline - time.monotonic(), 0)))
            left = sorted(self._in_flight)
            self._exiting = True
        if left:
            LOG.warning("Stopping with %s invocation(s) still in flight after %s s: SOAR delivers them again (%s)",
                        len(left), timeout, ", ".join(left))
        else:
            LOG.info("All invocations in flight have finished and been answered: stopping")
        # the same way resilient-circuits stops on SIGTERM, now that nothing is in flight: its signal event,
        # fired from this thread as circuits allows (a real signal sent now could leave the loop asleep)
        self._root.fire(circuits_signal(signal.SIGTERM, None))


GRACEFUL_STOP = GracefulStop()
