# -*- coding: utf-8 -*-
"""A graceful SIGTERM for `resilient-circuits run`: finish the sends in flight, take no new ones, then exit.

resilient-circuits exits on SIGTERM at once: sends still running are cut off and their messages, never
acknowledged, go to another replica, which sends a mail that may already have gone out. Here the first
SIGTERM starts a drain instead: invocations that arrive from then on are held back (neither run nor
acknowledged: the broker gives them to another replica when this one has gone), the ones in flight run on
until their final reply has been sent, and then, or after smtp_conn_timeout at the latest, the process
stops the way resilient-circuits always does. A second SIGTERM, or SIGINT (Ctrl-C), stops at once.

An invocation is in flight from its message's arrival until resilient-circuits has sent its final reply
(acknowledging the message just before).
"""

import json
import logging
import signal
import threading
import time

from circuits.core.events import signal as circuits_signal

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

    def reply_sent(self, send_event):
        if getattr(getattr(send_event, "value", None), "errors", False) or not _is_final_reply(send_event):
            return
        with self._lock:
            self._in_flight.discard(getattr(send_event, "message_id", None))
            self._lock.notify_all()

    def in_flight(self):
        with self._lock:
            return len(self._in_flight)

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
