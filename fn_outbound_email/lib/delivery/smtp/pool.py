# -*- coding: utf-8 -*-
"""Idle SMTP sessions kept for the next send with the same settings.

A fresh session costs TCP, EHLO, STARTTLS, the TLS handshake, EHLO again and AUTH: six round trips before
MAIL FROM, 300-600 ms to a relay 25-50 ms away. A burst of notifications pays that once per pool session
instead of once per mail.

* A session is used by one thread at a time: it is out of the pool while in use (resilient-circuits
  ``num_workers`` > 1 takes several at once).
* Sessions idle longer than ``idle_seconds`` are closed (QUIT) by a daemon thread, well before the
  usual 300 s a server waits (RFC 5321 section 4.5.3.2.7); all are closed at interpreter exit.
* A session is used for at most MAX_SESSION_SECONDS from its connection, however busy: a long-lived
  connection keeps a server's per-connection state (and a login whose rights may have changed) for ever.
* The pool is emptied after ``fork()`` in the child (the sessions are the parent's connections: the child
  must never speak on them) and on an app.config reload (``close_all``).
* The pool only stores and hands out; whether a session still works is the transport's check (nothing
  unread on it), so a dead one is replaced before a transaction starts, never after DATA.
"""

import atexit
import logging
import os
import smtplib
import threading
import time

LOG = logging.getLogger(__name__)

DEFAULT_IDLE_SECONDS = 30
MAX_IDLE_PER_KEY = 8           # more idle sessions than concurrent workers would be of no use
MAX_SESSION_SECONDS = 600      # a session is not reused once this old (from its connection)


QUIT_SECONDS = 2.0              # a polite QUIT waits at most this long (its answer changes nothing)


def close_session(smtp, wait=QUIT_SECONDS):
    """QUIT politely, waiting at most ``wait`` seconds, and close the socket whatever the server does."""
    if smtp.sock is None:
        return
    if hasattr(smtp, "deadline"):      # lib/delivery/smtp/session.py's sessions bound every read by their deadline
        smtp.deadline = time.monotonic() + wait
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _too_old(session, now):
    """Whether ``session`` (``opened_at``: time.monotonic() at its connection) is past MAX_SESSION_SECONDS."""
    return now - getattr(session, "opened_at", now) >= MAX_SESSION_SECONDS


class SessionPool:
    def __init__(self):
        self._reset()

    def _reset(self):
        self._idle = {}                # key -> [(session, idle since, idle seconds)], most recent last
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._reaper = None

    def forget_after_fork(self):
        """In a forked child: drop every session without a word on its connection (the parent's), and start
        with a new lock (another thread of the parent may have held it at the fork) and no reaper thread."""
        sessions = [entry[0] for entries in self._idle.values() for entry in entries]
        self._reset()
        for session in sessions:
            session.close()            # the child's copy of the descriptor only: the parent's session lives on

    def take(self, key):
        """An idle session for ``key`` (most recently used first), or None."""
        expired = []
        with self._lock:
            sessions = self._idle.get(key, [])
            found = None
            while sessions:
                session, since, idle_seconds = sessions.pop()
                now = time.monotonic()
                if now - since < idle_seconds and not _too_old(session, now):
                    found = session
                    break
                expired.append(session)
            if not sessions:
                self._idle.pop(key, None)
        for session in expired:
            close_session(session)
        return found

    def give_back(self, key, session, idle_seconds=DEFAULT_IDLE_SECONDS):
        """Keep ``session`` (after a successful transaction) for ``idle_seconds``, unless it is too old."""
        if _too_old(session, time.monotonic()):
            close_session(session)
            return
        surplus = None
        with self._lock:
            sessions = self._idle.setdefault(key, [])
            sessions.append((session, time.monotonic(), idle_seconds))
            if len(sessions) > MAX_IDLE_PER_KEY:
                surplus = sessions.pop(0)[0]
            if self._reaper is None or not self._reaper.is_alive():
                self._reaper = threading.Thread(target=self._reap, name="smtp-pool-reaper", daemon=True)
                self._reaper.start()
            self._wake.notify()
        if surplus is not None:
            close_session(surplus)

    def idle_count(self):
        with self._lock:
            return sum(len(sessions) for sessions in self._idle.values())

    def close_all(self):
        """Close every idle session (shutdown, tests, a settings change)."""
        with self._lock:
            sessions = [entry[0] for entries in self._idle.values() for entry in entries]
            self._idle.clear()
            self._wake.notify()
        for session in sessions:
            close_session(session)

    def _reap(self):
        """Close sessions as they pass their idle time; ends when the pool is empty."""
        while True:
            expired = []
            with self._lock:
                if not self._idle:
                    self._reaper = None
                    return
                now = time.monotonic()
                next_expiry = None
                for key in list(self._idle):
                    keep = []
                    for entry in self._idle[key]:
                        due = entry[1] + entry[2]
                        if due <= now:
                            expired.append(entry[0])
                        else:
                            keep.append(entry)
                            next_expiry = due if next_expiry is None else min(next_expiry, due)
                    if keep:
                        self._idle[key] = keep
                    else:
                        del self._idle[key]
                if not expired and next_expiry is not None:
                    self._wake.wait(next_expiry - now)
            for session in expired:
                close_session(session)
            if expired:
                LOG.debug("Closed %s idle SMTP session(s)", len(expired))


POOL = SessionPool()
atexit.register(POOL.close_all)
if hasattr(os, "register_at_fork"):          # POSIX only
    os.register_at_fork(after_in_child=POOL.forget_after_fork)
