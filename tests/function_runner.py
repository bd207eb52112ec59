# -*- coding: utf-8 -*-
"""Run a SOAR function through pytest-resilient-circuits and return its result payload."""

import time

from circuits.core.manager import TIMEOUT
from resilient_circuits import FunctionResult, SubmitTestFunction


class FunctionRaised(Exception):
    """The function raised; ``original`` is the exception from the component."""

    def __init__(self, original):
        super().__init__(str(original))
        self.original = original


def call_function(circuits_app, function_name, inputs, timeout=30):
    """Fire the function; return the result payload dict, or raise FunctionRaised."""
    event = SubmitTestFunction(function_name, inputs)
    circuits_app.manager.fire(event)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result_event = circuits_app.watcher.wait("{0}_result".format(function_name), parent=event, timeout=TIMEOUT)
        if result_event:
            result = result_event.kwargs["result"]
            assert isinstance(result, FunctionResult)
            return result.value
        exception_event = circuits_app.watcher.wait("exception", parent=None, timeout=TIMEOUT)
        if exception_event:
            raise FunctionRaised(exception_event.args[1])
    raise AssertionError("{0} produced neither a result nor an exception in {1} s".format(function_name, timeout))
