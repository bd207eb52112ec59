# -*- coding: utf-8 -*-
"""The render worker processes and their pool: starting a worker (subprocess, a clean environment, its pipes),
talking to it within a deadline and a size cap, killing it, and keeping a few warm (lib/templates/worker.py
renders with them; lib/templates/worker_main.py is the worker's side)."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

from fn_outbound_email.lib.errors import TemplateError

LOG = logging.getLogger(__name__)

WARM_WORKERS = 2            # kept started; more start while more renders run at once, and end after
# the worker's own deadline check stops a template with its line; the kill is for a worker that cannot check
KILL_GRACE_SECONDS = 1.0
START_SECONDS = 60          # a worker imports Jinja and the app's modules before it is ready
# the folder holding the fn_outbound_email package (this file is fn_outbound_email/lib/templates/worker_pool.py)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class WorkerLost(Exception):
    """The worker ended or broke the protocol; the text says how."""


class Overtime(Exception):
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
        except (WorkerLost, Overtime) as err:
            self.kill()
            raise TemplateError("The template render process could not start ({0}); is template_max_memory ({1} "
                                "bytes) too small?".format(str(err) or "it did not start in time", max_memory))

    def send(self, data):
        """Send one pickled message."""
        try:
            self._requests.send_bytes(data)
        except OSError:
            raise WorkerLost(self._ended())

    def receive(self, deadline, max_bytes):
        """The worker's next message (a dict) before ``deadline``; Overtime or WorkerLost otherwise."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._replies.poll(remaining):
            raise Overtime()
        try:
            message = json.loads(self._replies.recv_bytes(max_bytes))
        except (EOFError, OSError):         # OSError: a frame longer than max_bytes
            raise WorkerLost(self._ended())
        except ValueError:
            raise WorkerLost("its render process sent a malformed reply")
        if not isinstance(message, dict):
            raise WorkerLost("its render process sent a malformed reply")
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
