# -*- coding: utf-8 -*-
"""Rendering the app's templates in worker processes with hard limits: the renderer sends and the CLI use.

The sandbox's checks (lib/templating.py, lib/template_limits.py) refuse what they can see coming. What no
check inside Python can stop (a huge value built in C code, a catastrophic regular expression, the hash of
a tuple nested a million deep, which crashes CPython) is stopped by the render worker process: its address
space is limited (``template_max_memory``, RLIMIT_AS), its CPU time too (``template_timeout``, RLIMIT_CPU),
and the app kills it when the render's deadline has passed. The send gets a TemplateError naming what
happened; the app and its other sends go on, and a new worker takes the lost one's place.

Workers are started with subprocess (fork and exec at once, safe in the app's threaded process, unlike a
bare fork) and kept warm in a small pool, so a render costs no process start in the common path. They get
an environment without the app's (where app.config secrets can come from), the context as plain data, and
answers to the SOAR reads template_helper makes: no credential is in a worker
(lib/templates/worker_main.py has the protocol).
"""

import atexit
import logging
import os
import pickle
import threading
import time
from collections import OrderedDict

from fn_outbound_email.lib.errors import MailError, TemplateError
from fn_outbound_email.lib.templates import check as template_check
from fn_outbound_email.lib.templates.helper import LazyList, TemplateHelper, checked_query_conditions
from fn_outbound_email.lib.templates.limits import DEFAULT_LIMITS
from fn_outbound_email.lib.templates.render import RenderedTemplate, TemplateFiles
from fn_outbound_email.lib.templates.worker_main import CONTEXT_CALL, PLAIN, SOAR_READS
from fn_outbound_email.lib.templates.worker_pool import KILL_GRACE_SECONDS, Overtime, WorkerLost, WorkerPool

LOG = logging.getLogger(__name__)

REPORTED_TEMPLATES = 256    # templates whose warnings were logged, remembered (as the workers' compile cache)


def _request(source, name, context, limits):
    """The pickled render request, the context's lazy lists by name and the SOAR client of its helper."""
    plain, lazy, helper = {}, {}, None
    for key, value in context.items():
        if isinstance(value, TemplateHelper):
            helper = value
        elif isinstance(value, LazyList):
            lazy[key] = value
        else:
            plain[key] = value
    request = {"source": source, "name": name, "context": plain, "lazy": list(lazy),
               "helper": None if helper is None else {"date_format": helper.date_format},
               "timeout": limits.timeout, "max_output": limits.max_output}
    try:
        data = pickle.dumps(("render", request), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise TemplateError("Template '{0}' cannot be rendered: its context cannot be passed to the render "
                            "process ({1})".format(name, err))
    return data, lazy, (helper.soar if helper is not None else None)


class _Reads:
    """The app's side of a worker's calls during one render: SOAR reads and the context's lazy lists."""

    def __init__(self, lazy, soar):
        self._lazy = lazy
        self._soar = soar
        self.mail_error = None      # the MailError a read raised, reported as it is when the render fails for it

    def answer(self, message):
        name, args = message.get("call"), message.get("args")
        if not isinstance(args, list):
            return "failed", "the render process sent a call without arguments"
        try:
            if name == CONTEXT_CALL and len(args) == 1 and isinstance(args[0], str) and args[0] in self._lazy:
                return "answer", list(self._lazy[args[0]])
            if name in SOAR_READS and len(args) == SOAR_READS[name] and self._soar is not None:
                return "answer", getattr(self._soar, name)(*_checked_arguments(name, args))
        except MailError as err:
            self.mail_error = err
            return "mail_error", (str(err), getattr(err, "status_code", None))
        except Exception as err:  # the worker's template fails with it, as it would have in the app
            return "failed", "{0}: {1}".format(type(err).__name__, err)
        return "failed", "the render process asked for something the app does not answer"


def _checked_arguments(name, args):
    """A read's arguments as the app's SOAR client may take them from a worker: text and numbers, and for an
    incident query, conditions of the shape get_query_result allows (checked by its own rule again)."""
    if name == "query_incidents":
        conditions, max_rows = args
        if not isinstance(max_rows, int):
            raise ValueError("the number of incidents to query must be a number")
        return checked_query_conditions(conditions), max_rows
    if not all(isinstance(arg, PLAIN) for arg in args):
        raise ValueError("a template_helper call's arguments must be text or numbers")
    return args


class WorkerRenderer:
    """TemplateRenderer's interface (render, render_file), each render in a worker process of ``pool``."""

    def __init__(self, pool=None):
        self._pool = pool or POOL
        self._files = TemplateFiles()
        self._reported = OrderedDict()      # (name, source) -> what template_check.report_once marks
        self._lock = threading.Lock()

    def render_file(self, path, context, limits=None):
        return self.render(self._files.read(path), context, name=os.path.basename(path), limits=limits)

    def render(self, source, context, name="inline template", limits=None):
        """Render ``source`` with ``context`` in a worker into a RenderedTemplate; TemplateError on any failure,
        the MailError of a SOAR read that failed as it is."""
        limits = limits or DEFAULT_LIMITS
        request, lazy, soar = _request(source, name, context, limits)
        reads = _Reads(lazy, soar)
        # a reply holds the text (up to 6 bytes a character as JSON) and the warnings
        max_bytes = 6 * limits.max_output + (1 << 20)
        worker = self._pool.acquire(limits.max_memory)
        # from here, as the worker's own deadline: a worker's start is not the template's time
        deadline = time.monotonic() + limits.timeout + KILL_GRACE_SECONDS
        try:
            worker.send(request)
            reply = worker.receive(deadline, max_bytes)
            while "call" in reply:
                worker.send(pickle.dumps(reads.answer(reply), protocol=pickle.HIGHEST_PROTOCOL))
                reply = worker.receive(deadline, max_bytes)
        except Overtime:
            self._pool.discard(worker)
            raise TemplateError("Template '{0}' was stopped: it ran longer than template_timeout ({1:g} s)".format(
                name, limits.timeout))
        except WorkerLost as err:
            self._pool.discard(worker)
            raise TemplateError("Template '{0}' was stopped: {1}".format(name, err))
        except BaseException:
            self._pool.discard(worker)
            raise
        if reply.get("retire"):
            self._pool.discard(worker)
        else:
            self._pool.release(worker)
        return self._result(reply, source, name, reads)

    def _result(self, reply, source, name, reads):
        if reply.get("error") == "mail":
            message = str(reply.get("message"))
            raise reads.mail_error if str(reads.mail_error) == message else MailError(message)
        if "error" in reply:
            raise TemplateError(str(reply.get("message")))
        try:
            if not isinstance(reply["text"], str):
                raise TypeError("text")
            warnings = [template_check.TemplateWarning(int(line) if line is not None else None, str(message))
                        for line, message in reply.get("warnings") or ()]
        except (KeyError, TypeError, ValueError):
            raise TemplateError("Template '{0}' was stopped: its render process sent a malformed reply".format(name))
        rendered = RenderedTemplate(reply["text"])
        rendered.is_html = bool(reply.get("html"))
        rendered.warnings = warnings
        template_check.report_once(self._reported_marks(name, source), name, rendered.warnings)
        return rendered

    def _reported_marks(self, name, source):
        """The object report_once marks the logged warnings of this template on (a compiled template in the app)."""
        key = (name, source)
        with self._lock:
            marks = self._reported.get(key)
            if marks is None:
                marks = self._reported[key] = _ReportedWarnings()
                while len(self._reported) > REPORTED_TEMPLATES:
                    self._reported.popitem(last=False)
            else:
                self._reported.move_to_end(key)
            return marks


class _ReportedWarnings:
    """Stands in for a compiled template (which lives in the workers) where report_once notes what it logged."""

    reported_warnings = None


# one pool for the whole app (its settings are per send; a worker is picked by its memory limit)
POOL = WorkerPool()
renderer = WorkerRenderer(POOL)
atexit.register(POOL.close_all)
os.register_at_fork(after_in_child=POOL.forget_after_fork)
