# -*- coding: utf-8 -*-
"""A SOAR simulator for `resilient-circuits run`, `selftest` and `customize`: HTTPS REST on 127.0.0.1.

It answers what resilient-circuits asks at start-up (session, org, constants, field types, the app's functions
from its own export.res, actions, connector queues, message destinations, configuration imports) and the
incident, artifact, note, attachment and data-table reads the app makes, serving the sample incident of
tests/support/soar_mock.py. Every request is recorded (``requests``: method, path, body); anything it does not know
is answered 404 and recorded too, so a test can see what a real SOAR would have been asked.
"""

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from fn_outbound_email.lib.soar.startup import SHIPPED_EXPORT
from tests.support.smtp_server import take_bound_socket
from tests.support import soar_mock

ORG_ID = soar_mock.ORG_ID
ORG_NAME = "Test Organization"
API_KEY_ID = "deployed-test-key"
API_KEY_SECRET = "deployed-test-secret"
API_KEY_HANDLE = 77
INCIDENT_ID = soar_mock.INCIDENT_ID


@dataclass
class RecordedRequest:
    method: str
    path: str          # with the query, without /rest/orgs/<id>
    body: bytes


def _export():
    with open(SHIPPED_EXPORT, encoding="utf-8") as handle:
        return json.load(handle)


class SoarData:
    """What the simulator serves: the app's export.res definitions and the sample incident."""

    def __init__(self):
        export = _export()
        self.functions = {function["name"]: dict(function) for function in export["functions"]}
        self.function_fields = [field for field in export["fields"] if field.get("type_id") == 11]
        self.destinations = [dict(destination, id=number + 1, api_keys=[], users=[])
                             for number, destination in enumerate(export["message_destinations"])]
        self.incident = soar_mock.make_incident()
        self.imports = {}


def _json_body(handler):
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class _Routes:
    """(method, path regex) -> answer(simulator, match, body) returning (status, JSON-able or bytes)."""

    def __init__(self):
        self.table = []

    def add(self, method, pattern):
        def register(answer):
            self.table.append((method, re.compile(pattern + r"\Z"), answer))
            return answer
        return register

    def find(self, method, path):
        for route_method, pattern, answer in self.table:
            match = pattern.match(path)
            if route_method == method and match:
                return answer, match
        return None, None


ROUTES = _Routes()
ORG = r"/rest/orgs/{0}".format(ORG_ID)


@ROUTES.add("GET", r"/rest/session(\?.*)?")
def _session(sim, match, body):
    return 200, {"user_id": None, "api_key_handle": API_KEY_HANDLE, "csrf_token": "csrf-not-checked",
                 "orgs": [{"id": ORG_ID, "name": ORG_NAME, "enabled": True, "cloud_account": None,
                           "uuid": "00000000-0000-0000-0000-000000000201"}]}


@ROUTES.add("GET", r"/rest/const(\?.*)?")
def _const(sim, match, body):
    return 200, {"server_version": {"major": 51, "minor": 0, "build_number": 0, "version": "51.0.0.0"}}


@ROUTES.add("GET", ORG + r"(\?.*)?")
def _org(sim, match, body):
    return 200, {"id": ORG_ID, "name": ORG_NAME, "actions_framework_enabled": True}


@ROUTES.add("GET", ORG + r"/types/(incident|actioninvocation)/fields")
def _type_fields(sim, match, body):
    if match.group(1) == "incident":
        return 200, list(soar_mock.INCIDENT_FIELDS.values())
    return 200, []


@ROUTES.add("GET", ORG + r"/types/__function/fields")
def _function_fields(sim, match, body):
    return 200, sim.data.function_fields


@ROUTES.add("GET", ORG + r"/functions/(\w+)\?handle_format=names")
def _function(sim, match, body):
    function = sim.data.functions.get(match.group(1))
    return (200, function) if function else (404, {"success": False, "message": "no such function"})


@ROUTES.add("GET", ORG + r"/functions(\?.*)?")
def _functions(sim, match, body):
    return 200, {"entities": list(sim.data.functions.values())}


@ROUTES.add("GET", ORG + r"/actions(\?.*)?")
def _actions(sim, match, body):
    return 200, {"entities": []}


@ROUTES.add("GET", ORG + r"/connectors/queues(\?.*)?")
def _connector_queues(sim, match, body):
    return 200, {"queues": []}


@ROUTES.add("GET", ORG + r"/message_destinations")
def _destinations(sim, match, body):
    return 200, {"entities": sim.data.destinations}


@ROUTES.add("GET", ORG + r"/message_destinations/(\d+)")
def _destination(sim, match, body):
    return 200, sim.data.destinations[int(match.group(1)) - 1]


@ROUTES.add("PUT", ORG + r"/message_destinations/(\d+)")
def _destination_update(sim, match, body):
    sim.data.destinations[int(match.group(1)) - 1] = json.loads(body)
    return 200, json.loads(body)


@ROUTES.add("POST", ORG + r"/configurations/imports")
def _import(sim, match, body):
    import_id = len(sim.data.imports) + 1
    sim.data.imports[import_id] = {"id": import_id, "status": "PENDING", "messages": []}
    return 200, sim.data.imports[import_id]


@ROUTES.add("PUT", ORG + r"/configurations/imports/(\d+)")
def _import_decision(sim, match, body):
    decision = json.loads(body)
    sim.data.imports[int(match.group(1))] = decision
    return 200, decision


@ROUTES.add("GET", ORG + r"/incidents/(\d+)(\?.*)?")
def _incident(sim, match, body):
    if int(match.group(1)) != INCIDENT_ID:
        return 404, {"success": False, "message": "Incident not found"}
    return 200, sim.data.incident


@ROUTES.add("GET", ORG + r"/types/incident\?handle_format=names")
def _incident_type(sim, match, body):
    return 200, {"type_name": "incident", "fields": soar_mock.INCIDENT_FIELDS}


@ROUTES.add("GET", ORG + r"/types/ioc_table\?handle_format=names")
def _table_type(sim, match, body):
    return 200, {"type_name": "ioc_table", "fields": soar_mock.TABLE_FIELDS}


@ROUTES.add("GET", ORG + r"/incidents/\d+/table_data/ioc_table(\?.*)?")
def _table_rows(sim, match, body):
    return 200, {"id": 1001, "rows": soar_mock.TABLE_ROWS}


@ROUTES.add("POST", ORG + r"/incidents/\d+/artifacts/query_paged(\?.*)?")
def _artifacts(sim, match, body):
    return 200, {"recordsTotal": len(soar_mock.ARTIFACTS), "data": soar_mock.ARTIFACTS}


@ROUTES.add("POST", ORG + r"/incidents/\d+/comments/query(\?.*)?")
def _notes(sim, match, body):
    return 200, soar_mock.NOTES


@ROUTES.add("POST", ORG + r"/incidents/\d+/attachments/query\?include_tasks=true")
def _attachments(sim, match, body):
    return 200, {"attachments": soar_mock.ATTACHMENTS, "max_results_exceeded": False}


@ROUTES.add("GET", ORG + r"/(?:incidents|tasks)/\d+/attachments/(\d+)/contents")
def _attachment_contents(sim, match, body):
    content = soar_mock.ATTACHMENT_CONTENT.get(int(match.group(1)))
    return (200, content) if content is not None else (404, {"success": False, "message": "no attachment"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    simulator = None          # set per server class

    def log_message(self, format, *args):     # noqa: A002 -- BaseHTTPRequestHandler's name; requests are recorded
        pass

    def _answer(self):
        split = urlsplit(self.path)
        path = split.path + ("?" + split.query if split.query else "")
        body = _json_body(self)
        self.simulator.record(self.command, path, body)
        answer, match = ROUTES.find(self.command, path)
        status, content = answer(self.simulator, match, body) if answer else (404, {"success": False,
                                                                                    "message": "not simulated"})
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(content, bytes)
                         else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class SoarSimulator:
    """``with SoarSimulator(tls_context, port) as soar: soar.port, soar.requests``."""

    def __init__(self, tls_context, port):
        self.data = SoarData()
        self.requests = []
        self._lock = threading.Lock()
        handler = type("SimulatorHandler", (_Handler,), {"simulator": self})
        held = take_bound_socket(port)
        if held is not None:
            held.close()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._server.socket = tls_context.wrap_socket(self._server.socket, server_side=True)
        self.port = port
        self._thread = None

    def record(self, method, path, body):
        with self._lock:
            self.requests.append(RecordedRequest(method, re.sub(r"^/rest/orgs/\d+", "", path), body))

    def paths(self, method=None):
        with self._lock:
            return [request.path for request in self.requests if method in (None, request.method)]

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="soar-simulator", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
