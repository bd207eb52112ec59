# -*- coding: utf-8 -*-
"""A forward proxy on 127.0.0.1 for the tests, as app.config's http_proxy / https_proxy name one.

``CONNECT host:port`` opens a tunnel (HTTPS) and a request in absolute form (``POST http://host:port/path``,
plain HTTP) is passed on; either way the connection goes to 127.0.0.1 at the port asked for, whatever the host
name, so a test can give an API a name its test certificate is issued for. ``targets`` lists what was asked
(``CONNECT host:port`` or ``POST http://...``), in order.
"""

import socket
import socketserver
import threading

from fn_outbound_email.cli.common import BackgroundServer

_BUFFER = 65536


class ForwardProxy(BackgroundServer):
    """Context manager: ``with ForwardProxy() as proxy: proxy.url, proxy.targets``."""

    def __init__(self):
        self.targets = []
        self.lock = threading.Lock()
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        super().__init__(server, name="forward-proxy")

    @property
    def url(self):
        return "http://127.0.0.1:{0}".format(self.port)


def _relay(source, target):
    try:
        while True:
            data = source.recv(_BUFFER)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _handler_class(proxy):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.request.recv(_BUFFER)
                if not chunk:
                    return
                head += chunk
            request_line, rest = head.split(b"\r\n", 1)
            method, target, version = request_line.decode("latin-1").split(" ")
            with proxy.lock:
                proxy.targets.append("{0} {1}".format(method, target))
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                upstream = socket.create_connection(("127.0.0.1", port))
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = head.split(b"\r\n\r\n", 1)[1]
            else:
                authority, _, path = target.split("://", 1)[1].partition("/")
                upstream = socket.create_connection(("127.0.0.1", int(authority.rsplit(":", 1)[1])))
                first = "{0} /{1} {2}\r\n".format(method, path, version).encode("latin-1") + rest
            with upstream:
                if first:
                    upstream.sendall(first)
                back = threading.Thread(target=_relay, args=(upstream, self.request), daemon=True)
                back.start()
                _relay(self.request, upstream)
                back.join(30)

    return Handler
