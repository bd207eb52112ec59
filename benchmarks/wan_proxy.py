# -*- coding: utf-8 -*-
"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed one-way time: a WAN in front of a local server.

Each chunk read from one side is forwarded to the other ``delay`` seconds after it arrived, in order, so a
round trip costs 2 x delay whatever the payload (bandwidth is not limited). TLS passes through untouched.

The proxy also counts *client flights*: a client chunk that could be an answer to something the server sent
(it arrives at least ``delay`` after a server chunk not yet answered, the time that chunk took to reach the
client) starts a new flight; the client's first chunk does too. That is the number of round trips the client
waited for, which is what pipelining saves; the TCP handshake is not counted.
"""

import asyncio
import threading
import time


class DelayProxy:
    """``with DelayProxy(target_port, delay=0.025) as proxy: connect to proxy.port; proxy.flights``."""

    def __init__(self, target_port, delay=0.025, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay = delay
        self.port = None
        self.flights = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._loop = None
        self._server = None
        self._thread = None
        self._started = threading.Event()

    def reset(self):
        with self._lock:
            self.flights = 0
            self.connections = 0

    # --- life cycle ----------------------------------------------------------------------------------------
    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def __exit__(self, *exc_info):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    # --- one connection --------------------------------------------------------------------------------------
    async def _serve(self, client_reader, client_writer):
        with self._lock:
            self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        # when the client could first have seen the oldest server chunk it has not answered yet (None: none)
        state = {"answerable_at": None, "first": True}
        try:
            await asyncio.gather(self._pipe(client_reader, server_writer, "client", state),
                                 self._pipe(server_reader, client_writer, "server", state),
                                 return_exceptions=True)
        except asyncio.CancelledError:    # the proxy is shutting down
            pass

    async def _pipe(self, reader, writer, side, state):
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                now = time.monotonic()
                if data and side == "server" and state["answerable_at"] is None:
                    state["answerable_at"] = now + self.delay
                elif data and side == "client":
                    answerable = state["answerable_at"] is not None and now >= state["answerable_at"]
                    if answerable or state["first"]:
                        with self._lock:
                            self.flights += 1
                        state["first"] = False
                        state["answerable_at"] = None
                queue.put_nowait((now + self.delay, data or None))
                if not data:
                    break
            await sender
        except (ConnectionError, asyncio.CancelledError):
            sender.cancel()
            writer.close()
