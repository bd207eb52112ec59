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
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from multiprocessing.connection import Connection

from fn_outbound_email.lib.errors import MailError, TemplateError
from fn_outbound_email.lib.templates import check as template_check
from fn_outbound_email.lib.templates.helper import LazyList, TemplateHelper, checked_query_conditions
from fn_outbound_email.lib.templates.limits import DEFAULT_LIMITS
from fn_outbound_email.lib.templates.render import RenderedTemplate, TemplateFiles
from fn_outbound_email.lib.templates.worker_main import CONTEXT_CALL, PLAIN, SOAR_READS

LOG = logging.getLogger(__name__)

WARM_WORKERS = 2            # kept started; more start while more renders run at once, and end after
# the worker's own deadline check stops a template with its line; the kill is for a worker that cannot check
KILL_GRACE_SECONDS = 1.0
START_SECONDS = 60          # a worker imports Jinja and the app's modules before it is ready
REPORTED_TEMPLATES = 256    # templates whose warnings were logged, remembered (as the workers' compile cache)
# the folder holding the fn_outbound_email package (this file is fn_outbound_email/lib/templates/worker.py)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class _WorkerLost(Exception):
    """The worker ended or broke the protocol; the text says how."""


class _Overtime(Exception):
    """The render's deadline passed."""


def _worker_environment():
    """What a worker needs to start Python and import the app's modules as the app does; nothing else."""
    environment = {"PYTHONPATH": os.pathsep.join([_PACKAGE_ROOT] + [entry for entry in sys.path if entry]),
                   "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
    for name in ("PATH", "HOME", "TMPDIR"):
        if name in os.environ:
            environment[name] = os.environ[name]
    return environment


def _ending(returncode):
    """How a worker ended, for a reason."""
    if returncode is None:
        return "its render process stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal {0}".format(-returncode)
        if name == "SIGSEGV":
            return "it crashed its render process (SIGSEGV; a value nested too deeply can do that)"
        if name == "SIGXCPU":
            return "it used more CPU time than template_timeout allows"
        return "its render process was ended by {0}".format(name)
    return "its render process ended with exit status {0}".format(returncode)


class RenderWorker:
    """One worker process and the app's ends of its pipes."""

    def __init__(self, max_memory):
        self.max_memory = max_memory
        to_worker_read, self._to_worker = os.pipe()
        self._from_worker, from_worker_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fn_outbound_email.lib.templates.worker_main", str(to_worker_read),
                 str(from_worker_write), str(max_memory)],
                pass_fds=(to_worker_read, from_worker_write), env=_worker_environment(), cwd=_PACKAGE_ROOT,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException as err:
            for fd in (self._to_worker, self._from_worker):
                os.close(fd)
            if isinstance(err, OSError):
                raise TemplateError("The template render process could not start ({0}: {1})".format(
                    sys.executable, err.strerror or err))
            raise
        finally:
            os.close(to_worker_read)
            os.close(from_worker_write)
        self._requests = Connection(self._to_worker, readable=False)
        self._replies = Connection(self._from_worker, writable=False)
        try:
            self.receive(time.monotonic() + START_SECONDS, max_bytes=1024)
        except (_WorkerLost, _Overtime) as err:
            self.kill()
            raise TemplateError("The template render process could not start ({0}); is template_max_memory ({1} "
                                "bytes) too small?".format(str(err) or "it did not start in time", max_memory))

    def send(self, data):
        """Send one pickled message."""
        try:
            self._requests.send_bytes(data)
        except OSError:
            raise _WorkerLost(self._ended())

    def receive(self, deadline, max_bytes):
        """The worker's next message (a dict) before ``deadline``; _Overtime or _WorkerLost otherwise."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._replies.poll(remaining):
            raise _Overtime()
        try:
            message = json.loads(self._replies.recv_bytes(max_bytes))
        except (EOFError, OSError):         # OSError: a frame longer than max_bytes
            raise _WorkerLost(self._ended())
        except ValueError:
            raise _WorkerLost("its render process sent a malformed reply")
        if not isinstance(message, dict):
            raise _WorkerLost("its render process sent a malformed reply")
        return message

    def _ended(self):
        try:
            return _ending(self.process.wait(timeout=5))
        except subprocess.TimeoutExpired:
            return _ending(None)

    def alive(self):
        return self.process.poll() is None

    def kill(self):
        self.process.kill()
        self.close()

    def close(self):
        """Closing its pipe ends the worker (it reads end of file), and it is waited for."""
        for connection in (self._requests, self._replies):
            connection.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def forget(self):
        """After fork(), in the child: drop the pipes without touching the parent's worker."""
        for connection in (self._requests, self._replies):
            connection.close()


class WorkerPool:
    """Warm workers; a worker that was killed or died is replaced in the background."""

    def __init__(self, warm=WARM_WORKERS):
        self._warm = warm
        self._idle = []
        self._count = 0             # workers started and not yet ended: idle, rendering or starting
        self._filling = False
        self._lock = threading.Lock()

    def acquire(self, max_memory):
        stale = []
        with self._lock:
            worker = None
            while self._idle and worker is None:
                candidate = self._idle.pop()
                if candidate.max_memory == max_memory and candidate.alive():
                    worker = candidate
                else:
                    stale.append(candidate)
                    self._count -= 1
            if worker is None:
                self._count += 1
        for candidate in stale:     # started for another template_max_memory, or ended while idle
            candidate.kill()
        if worker is None:
            worker = self._start(max_memory)
        self._fill(max_memory)
        return worker

    def _start(self, max_memory):
        """A new worker; the caller counted it in ``_count``, which is undone when it cannot start."""
        try:
            return RenderWorker(max_memory)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def release(self, worker):
        with self._lock:
            if len(self._idle) < self._warm:
                self._idle.append(worker)
                return
            self._count -= 1
        worker.close()

    def discard(self, worker):
        """A worker that was killed, died or must not render again; another is started in its place."""
        with self._lock:
            self._count -= 1
        worker.kill()
        self._fill(worker.max_memory)

    def _fill(self, max_memory):
        with self._lock:
            if self._filling or self._count >= self._warm:
                return
            self._filling = True
        threading.Thread(target=self._start_warm, args=(max_memory,), name="render-worker-start",
                         daemon=True).start()

    def _start_warm(self, max_memory):
        try:
            while True:
                with self._lock:
                    if self._count >= self._warm:
                        return
                    self._count += 1
                self.release(self._start(max_memory))
        except Exception as err:         # the next render starts its own worker and reports why it cannot
            LOG.warning("A template render process could not be started in advance: %s", err)
        finally:
            with self._lock:
                self._filling = False

    def pids(self):
        """The process ids of the idle workers (for a look at them from outside)."""
        with self._lock:
            return [worker.process.pid for worker in self._idle]

    def close_all(self):
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for worker in idle:
            worker.close()

    def forget_after_fork(self):
        for worker in self._idle:
            worker.forget()
        self._idle, self._count, self._filling, self._lock = [], 0, False, threading.Lock()


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
        except _Overtime:
            self._pool.discard(worker)
            raise TemplateError("Template '{0}' was stopped: it ran longer than template_timeout ({1:g} s)".format(
                name, limits.timeout))
        except _WorkerLost as err:
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
