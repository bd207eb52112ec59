# -*- coding: utf-8 -*-
"""The render worker process: renders the app's templates under hard limits, holding no credential.

lib/templates/worker.py starts it as ``python -m fn_outbound_email.lib.templates.worker_main READ_FD WRITE_FD
MAX_MEMORY`` with an environment that holds no secret. It limits its own address space to MAX_MEMORY
(RLIMIT_AS, soft and hard) and, before each render, its CPU time to what it has used plus the render's
timeout (RLIMIT_CPU counts the whole life of a process). Whatever a template does to it, the app loses
this process at most, never a send of another thread.

What crosses the two pipes (frames of multiprocessing.connection: a length, then the bytes):

* app -> worker, pickled (the worker trusts the app): ``("render", request)``, and the answer to each
  call the worker made: ``("answer", value)``, ``("mail_error", (reason, SOAR's HTTP status or None))`` or
  ``("failed", reason)``.
* worker -> app, JSON (the app never unpickles what template code could have shaped): ``{"ready": pid}``
  once, ``{"call": name, "args": [...]}`` while rendering, then one reply: ``{"text": ..., "html": ...,
  "warnings": [[line, message], ...]}`` or ``{"error": "template" | "mail", "message": ..., "retire": ...}``.

The template's context arrives as plain data. ``template_helper`` is a real TemplateHelper here (its
formatting and regular expressions run under this process's limits) over ``SoarReads``, which asks the app
for the few SOAR reads the helper makes; ``artifact`` and ``note`` are fetched by the app only when the
template uses them.
"""

import functools
import json
import logging
import math
import os
import pickle
import resource
import sys
from multiprocessing.connection import Connection

from fn_outbound_email.lib.errors import MailError, TemplateError
from fn_outbound_email.lib.soar.client import SoarError
from fn_outbound_email.lib.templates.helper import LazyList, TemplateHelper
from fn_outbound_email.lib.templates.limits import TemplateLimits
from fn_outbound_email.lib.templates.render import TemplateRenderer

# the SOAR reads TemplateHelper makes, with their number of arguments: all the app answers besides the
# context's lazy lists ("context")
SOAR_READS = {"get_field_definitions": 1, "get_datatable_rows": 2, "get_task": 2, "query_incidents": 2,
              "incident_url": 1, "task_url": 2}
CONTEXT_CALL = "context"
PLAIN = (str, int, float, bool, type(None))


class ParentReadFailed(SoarError):
    """A SOAR read the app made for the template failed, with SOAR's status (template_helper renders a missing
    data table as '-' on a 404); when the render fails for it, the app reports its own exception."""


class _Parent:
    """The pipes to the app."""

    def __init__(self, requests, replies):
        self._requests = requests
        self._replies = replies

    def send(self, message):
        self._replies.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8"))

    def receive(self):
        return pickle.loads(self._requests.recv_bytes())

    def call(self, name, *args):
        """The app's answer to ``name(*args)``; the arguments go as text or numbers."""
        self.send({"call": name, "args": [_plain(arg) for arg in args]})
        kind, value = self.receive()
        if kind == "answer":
            return value
        if kind == "mail_error":
            message, status_code = value
            raise ParentReadFailed(message, status_code=status_code)
        raise RuntimeError(value)


def _plain(value):
    """``value`` as JSON data: lists and dicts of text and numbers; anything else (an undefined value) as its text."""
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


class SoarReads:
    """The SOAR client as TemplateHelper uses it, each read answered by the app's real client. One serves one
    render: a type's field definitions are asked for once (get_incident_value needs them at every call)."""

    def __init__(self, parent):
        self._parent = parent
        self._field_definitions = {}

    def get_field_definitions(self, type_name="incident"):
        key = type_name if isinstance(type_name, PLAIN) else str(type_name)
        if key not in self._field_definitions:
            self._field_definitions[key] = self._parent.call("get_field_definitions", type_name)
        return self._field_definitions[key]

    def get_datatable_rows(self, incident_id, table_name):
        return self._parent.call("get_datatable_rows", incident_id, table_name)

    def get_task(self, incident_id, task_id):
        return self._parent.call("get_task", incident_id, task_id)

    def query_incidents(self, conditions, max_rows):
        return tuple(self._parent.call("query_incidents", conditions, max_rows))

    def incident_url(self, incident_id):
        return self._parent.call("incident_url", incident_id)

    def task_url(self, incident_id, task_id):
        return self._parent.call("task_url", incident_id, task_id)


def _limit_cpu(seconds):
    """RLIMIT_CPU counts a process's whole life: allow what it has used plus this render's seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(math.ceil(usage.ru_utime + usage.ru_stime + seconds)) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _limit_memory(max_bytes):
    """Address space, soft and hard (so no template code could raise it again), within any existing hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        max_bytes = min(max_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def render(renderer, request, parent):
    """The reply to one render request."""
    context = dict(request["context"])
    for name in request["lazy"]:
        context[name] = LazyList(functools.partial(parent.call, CONTEXT_CALL, name))
    if request["helper"] is not None:
        context["template_helper"] = TemplateHelper(SoarReads(parent), request["helper"]["date_format"])
    limits = TemplateLimits(timeout=request["timeout"], max_output=request["max_output"])
    _limit_cpu(limits.timeout)
    try:
        rendered = renderer.render(request["source"], context, name=request["name"], limits=limits)
        return {"text": str(rendered), "html": rendered.is_html,
                "warnings": [[warning.line, warning.message] for warning in rendered.warnings]}
    except TemplateError as err:
        # after a MemoryError the heap may be fragmented past use: a fresh process serves the next render
        return {"error": "template", "message": str(err), "retire": isinstance(err.__context__, MemoryError)}
    except MailError as err:
        return {"error": "mail", "message": str(err)}


def main(argv=None):
    try:
        return _serve(argv)
    except (BrokenPipeError, ConnectionResetError):
        # the app ended while this worker started or rendered (a command such as `outbound-email demo` exits
        # as soon as its mail is sent): nobody is left to answer, and a traceback would only alarm its user
        return 0


def _serve(argv):
    read_fd, write_fd, max_memory = (int(value) for value in (argv or sys.argv[1:]))
    parent = _Parent(Connection(read_fd, writable=False), Connection(write_fd, readable=False))
    # the app logs the template's warnings; Python's last-resort handler would print them on stderr here
    logging.getLogger().addHandler(logging.NullHandler())
    _limit_memory(max_memory)
    renderer = TemplateRenderer()        # its compiled-template cache serves every render of this process
    parent.send({"ready": os.getpid()})
    while True:
        try:
            kind, request = parent.receive()
        except EOFError:                 # the app closed the pipe (or ended)
            return 0
        if kind != "render":
            return 1
        reply = render(renderer, request, parent)
        parent.send(reply)
        if reply.get("retire"):
            return 0


if __name__ == "__main__":
    sys.exit(main())
