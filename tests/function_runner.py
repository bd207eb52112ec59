# -*- coding: utf-8 -*-
"""Run a SOAR function through pytest-resilient-circuits and return its result payload."""

import time

from resilient_circuits import FunctionResult, SubmitTestFunction

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


def app_config(port, templates=None, **settings):
    """The app.config text a test module hands pytest-resilient-circuits (as its ``config_data``).

    The app sends to 127.0.0.1:``port`` with a 5 s timeout and no retries unless ``settings`` say otherwise;
    ``templates`` ({label: path}) fills [fn_outbound_email:templates].
    """
    section = {"smtp_server": "127.0.0.1", "smtp_port": port, "smtp_conn_timeout": 5, "smtp_retries": 0}
    section.update(settings)
    lines = ["[fn_outbound_email]"] + ["{0} = {1}".format(key, value) for key, value in section.items()]
    if templates:
        lines += ["", "[fn_outbound_email:templates]"] + ["{0} = {1}".format(*item) for item in templates.items()]
    return "\n".join(lines) + "\n"
