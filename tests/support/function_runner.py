# -*- coding: utf-8 -*-
"""Run a SOAR function through pytest-resilient-circuits and return its result payload."""

import time

from resilient_circuits import FunctionResult, SubmitTestFunction

from tests.support.config_section import app_config  # noqa: F401  (modules import it from here too)

POLL_SECONDS = 0.01


class FunctionRaised(Exception):
    """The function raised; ``original`` is the exception from the component."""

    def __init__(self, original):
        super().__init__(str(original))
        self.original = original


def _take_event(watcher, name, parent=None):
    """Like Watcher.wait, without its 0.1 s sleeps: a finished event of that name (under parent), or None."""
    with watcher._lock:
        for event in list(watcher._events):
            if event.name != name or event.waitingHandlers != 0:
                continue
            ancestor = event
            while parent is not None and ancestor is not None and ancestor != parent:
                ancestor = ancestor.parent
            if parent is None or ancestor is not None:
                watcher._events.remove(event)
                return event
    return None


def call_function(circuits_app, function_name, inputs, timeout=30):
    """Fire the function; return the result payload dict, or raise FunctionRaised."""
    event = SubmitTestFunction(function_name, inputs)
    circuits_app.manager.fire(event)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result_event = _take_event(circuits_app.watcher, "{0}_result".format(function_name), parent=event)
        if result_event:
            result = result_event.kwargs["result"]
            assert isinstance(result, FunctionResult)
            return result.value
        exception_event = _take_event(circuits_app.watcher, "exception")
        if exception_event:
            raise FunctionRaised(exception_event.args[1])
        time.sleep(POLL_SECONDS)
    raise AssertionError("{0} produced neither a result nor an exception in {1} s".format(function_name, timeout))


def send_function(circuits_app, function_name, defaults=None, **inputs):
    """Run ``function_name`` about the SOAR mock's incident with ``inputs`` over ``defaults``."""
    from tests.support.soar_mock import INCIDENT_ID
    values = dict({"mail_incident_id": INCIDENT_ID}, **(defaults or {}))
    values.update(inputs)
    return call_function(circuits_app, function_name, values)
