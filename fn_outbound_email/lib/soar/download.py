# -*- coding: utf-8 -*-
"""Downloading one attachment's contents from SOAR: streamed, within a byte budget and a deadline.

The attachment downloads of one send share one ``DownloadBudget`` (what
max_message_size leaves for attachments), so sizes missing from SOAR's
attachment list, or understated there, cannot add up past it: each chunk is
taken from the budget as it arrives. Each download also has an overall
deadline, DOWNLOAD_DEADLINE, besides the REST client's per-read timeout, which
a server sending a byte now and then never reaches.
"""

import os
import socket
import threading
import time

import requests
import urllib3
from resilient.co3base import BaseClient

DOWNLOAD_CHUNK = 1024 * 1024
DOWNLOAD_DEADLINE = 120    # seconds one attachment download may take in all
# what reading a streamed body can raise that requests does not wrap (urllib3's own errors)
_URLLIB3_READ_FAULTS = (urllib3.exceptions.HTTPError, OSError)


class DownloadCancelled(Exception):
    """The send no longer needs the attachment (another part of it failed)."""


class DownloadBudget:
    """The bytes the attachment downloads of one send may hold together, shared by the download threads.

    The first download to need more than is left spends the budget: its error is kept, and every download
    of the send still running or yet to start stops with that same error.
    """

    def __init__(self, total_bytes):
        self.total_bytes = total_bytes
        self._left = total_bytes
        self._lock = threading.Lock()
        self.error = None

    def take(self, size, error):
        """Take ``size`` bytes; raise (and keep) ``error()`` when fewer are left, or the error kept before."""
        with self._lock:
            if self.error is None and size > self._left:
                self.error = error()
            if self.error is not None:
                raise self.error
            self._left -= size

    def check(self):
        """Raise the error kept when the budget was spent, if it was."""
        with self._lock:
            if self.error is not None:
                raise self.error


def deadline_passed(err):
    """Whether ``err`` ended a download at DOWNLOAD_DEADLINE."""
    return getattr(err, "deadline_passed", False)


def _deadline_error():
    err = requests.ConnectionError("the download did not end within its deadline")
    err.deadline_passed = True
    return err


class _Watchdog:
    """Shuts a streamed response's socket at a deadline.

    requests' timeout bounds each read, not a download: a server sending a byte now and then keeps it going
    for ever, and the read blocks inside urllib3 where no check of ours runs. Shutting the socket down from
    here ends that read at once (it sees the end of the stream). Hand-written: neither requests nor urllib3
    has a total deadline for a body.
    """

    def __init__(self, response, seconds):
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._socket = _socket_of(response)
        self._timer = threading.Timer(max(seconds, 0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self):
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:          # already closed: the read has ended anyway
                    pass

    def stop(self):
        with self._lock:
            self._done = True
            if self._socket is not None:
                self._socket.close()
        self._timer.cancel()


def _socket_of(response):
    """A socket on the connection ``response`` streams from (a duplicate descriptor: http.client may already
    have let go of its socket object while its reader still holds the connection), or None (a mocked body)."""
    try:
        return socket.socket(fileno=os.dup(response.raw.fileno()))
    except (AttributeError, OSError, ValueError):
        return None


def read_attachment(rest, uri, max_bytes, budget, stop, over_budget, read_timeout):
    """The bytes at ``uri`` (an org-relative REST path), read through ``rest`` (resilient's client), or None as
    soon as there are more than ``max_bytes``.

    Each chunk is taken from ``budget`` (raising ``over_budget()`` when it runs out); ``stop`` (an Event) ends
    the download with DownloadCancelled; ``read_timeout`` bounds each read and DOWNLOAD_DEADLINE the whole
    download (a requests ConnectionError for which ``deadline_passed`` is true).
    """
    if stop.is_set():
        raise DownloadCancelled()
    budget.check()
    if not isinstance(rest, BaseClient):          # a stand-in (offline data) answers with bytes
        content = rest.get_content(uri)
        if len(content) > max_bytes:
            return None
        budget.take(len(content), over_budget)
        return content
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    # The client's get_content reads the whole body, whatever its size. Streamed in chunks instead, through
    # the client's own session and request wrapper (which adds the API-key login as get_content does).
    url = "{0}/rest/orgs/{1}{2}".format(rest.base_url, rest.org_id, uri)
    response = rest._execute_request(rest.session.get, url, stream=True, proxies=rest.proxies,
                                     cookies=rest.cookies, headers=rest.make_headers(), verify=rest.verify,
                                     timeout=read_timeout, cert=rest.cert)
    watchdog = _Watchdog(response, deadline - time.monotonic())
    try:
        with response:
            if response.status_code != 200:
                raise requests.HTTPError(response=response)        # the error page is not read
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                return None
            chunks, size = [], 0
            for chunk in response.iter_content(DOWNLOAD_CHUNK):
                if stop.is_set():
                    raise DownloadCancelled()
                if time.monotonic() > deadline:
                    raise _deadline_error()
                size += len(chunk)
                if size > max_bytes:
                    return None
                budget.take(len(chunk), over_budget)
                chunks.append(chunk)
    except (requests.RequestException,) + _URLLIB3_READ_FAULTS:
        if watchdog.fired:
            raise _deadline_error()
        raise
    finally:
        watchdog.stop()
    if watchdog.fired:            # the shutdown may have ended a body without a declared length early, quietly
        raise _deadline_error()
    return b"".join(chunks)
