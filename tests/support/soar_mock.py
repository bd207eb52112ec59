# -*- coding: utf-8 -*-
"""A mock SOAR REST API with one rich incident, for pytest-resilient-circuits.

The incident has text, select, multiselect, date, number, boolean and
text-area fields, artifacts, notes with children, incident and task
attachments (two of them share a name) and a data table. Every request is
counted so tests can assert how many REST calls a send makes.
"""

import re
import threading
from collections import namedtuple

import requests
import requests_mock
from pytest_resilient_circuits import BasicResilientMock, resilient_endpoint

INCIDENT_ID = 2314
TASK_ID = 7001
ORG_ID = 201

_Endpoint = namedtuple("Endpoint", "type uri")
# resilient's mock metaclass adds every subclass's endpoints to the base class's dict;
# keep a copy of the base set so each mock class gets exactly its own endpoints
_BASIC_ENDPOINTS = dict(BasicResilientMock.registered_endpoints)


def _own_endpoints(cls):
    endpoints = dict(_BASIC_ENDPOINTS)
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if hasattr(value, "uri") and hasattr(value, "request_type"):
                endpoints[_Endpoint(value.request_type, value.uri)] = value
    return endpoints


def isolated_endpoints(cls):
    """Class decorator: give a mock class only the endpoints it and its bases define."""
    cls.registered_endpoints = _own_endpoints(cls)
    # the metaclass also added this class's endpoints to its base's dict: give the bases theirs back
    for base in cls.__mro__[1:]:
        if getattr(base, "_isolated_endpoints", False):
            base.registered_endpoints = _own_endpoints(base)
    cls._isolated_endpoints = True
    BasicResilientMock.registered_endpoints.clear()
    BasicResilientMock.registered_endpoints.update(_BASIC_ENDPOINTS)
    return cls


def _field(name, input_type, text, prefix=None, values=None, order=0):
    return {"name": name, "text": text, "input_type": input_type, "prefix": prefix, "values": values or [],
            "type_id": 0, "order": order, "uuid": "00000000-0000-0000-0000-{0:012d}".format(abs(hash(name)) % 10 ** 12)}


INCIDENT_FIELDS = {
    "name": _field("name", "text", "Name"),
    "description": _field("description", "textarea", "Description"),
    "severity_code": _field("severity_code", "select", "Severity",
                            values=[{"value": 4, "label": "Low"}, {"value": 5, "label": "Medium"},
                                    {"value": 6, "label": "High"}]),
    "plan_status": _field("plan_status", "select", "Status",
                          values=[{"value": "A", "label": "Active"}, {"value": "C", "label": "Closed"}]),
    "create_date": _field("create_date", "datetimepicker", "Date Created"),
    "discovered_date": _field("discovered_date", "datetimepicker", "Date Discovered"),
    "incident_type_ids": _field("incident_type_ids", "multiselect", "Incident Type"),
    "confirmed": _field("confirmed", "boolean", "Confirmed"),
    "custom_text": _field("custom_text", "text", "Custom text", prefix="properties"),
    "custom_select": _field("custom_select", "select", "Custom select", prefix="properties",
                            values=[{"value": 301, "label": "Alpha"}, {"value": 302, "label": "Beta"}]),
    "custom_multi": _field("custom_multi", "multiselect", "Custom multi", prefix="properties",
                           values=[{"value": 401, "label": "Red"}, {"value": 402, "label": "Green"}]),
    "custom_number": _field("custom_number", "number", "Custom number", prefix="properties"),
    "custom_notes": _field("custom_notes", "textarea", "Custom notes", prefix="properties"),
    "custom_date": _field("custom_date", "datepicker", "Custom date", prefix="properties"),
}

TABLE_FIELDS = {
    "ioc": _field("ioc", "text", "Indicator", order=0),
    "seen": _field("seen", "datetimepicker", "First seen", order=1),
    "score": _field("score", "number", "Score", order=2),
}


def make_incident():
    return {
        "id": INCIDENT_ID, "name": "Phishing wave: \"Invoice\" & <script>", "org_id": ORG_ID,
        "description": {"format": "html", "content": "<p>Users got <b>invoice</b> mails from O'Brien & Co.</p>"
                                                     "<script>alert(1)</script>"},
        "severity_code": "Medium", "plan_status": "A", "create_date": 1659708203441,
        "discovered_date": 1659700000000, "incident_type_ids": ["Phishing", "Malware"], "confirmed": True,
        "phase_id": "Respond", "owner_id": "analyst@example.com",
        "properties": {"custom_text": "Tom's \"quoted\" & <tagged> text", "custom_select": "Beta",
                       "custom_multi": ["Red", "Green"], "custom_number": 42,
                       "custom_notes": {"format": "text", "content": "line one\nline two"},
                       "custom_date": 1659657600000},
    }


ARTIFACTS = [
    {"id": 1, "type": "IP Address", "value": "203.0.113.7", "description": "sender relay"},
    {"id": 2, "type": "Email Sender", "value": "billing@evil.example",
     "description": {"format": "text", "content": "spoofed sender"}},
]

NOTES = [
    {"id": 11, "parent_id": None, "text": {"format": "html", "content": "<p>Parent note</p>"},
     "children": [{"id": 12, "parent_id": 11, "text": "Child note", "children": []}]},
    {"id": 13, "parent_id": None, "text": "Second note", "children": []},
]

ATTACHMENT_CONTENT = {31: b"incident report\n", 32: b"task report\n", 33: b"%PDF-1.4 fake\n", 34: b"dot dot\n"}
ATTACHMENTS = [
    {"type": "incident", "id": 31, "name": "report.txt", "content_type": "text/plain", "task_id": None},
    {"type": "task", "id": 32, "name": "report.txt", "content_type": "text/plain", "task_id": TASK_ID},
    {"type": "incident", "id": 33, "name": "Prüfbericht ä.pdf", "content_type": "application/pdf", "task_id": None},
    {"type": "incident", "id": 34, "name": "../x", "content_type": "text/plain", "task_id": None},
]
for _attachment in ATTACHMENTS:            # SOAR's attachment list gives each file's size
    _attachment["size"] = len(ATTACHMENT_CONTENT[_attachment["id"]])

# a task whose name and instructions are what anyone editing a task could write: placeholders and template code
OTHER_INCIDENT_TASK_ID = 7002
TASKS = {
    TASK_ID: {"id": TASK_ID, "inc_id": INCIDENT_ID, "name": "@INSTRUCTIONS@ {{ 6*7 }}",
              "instructions": "<p>Run {{ 7*7 }} <script>alert(1)</script>@TASK_ID@</p>"},
    OTHER_INCIDENT_TASK_ID: {"id": OTHER_INCIDENT_TASK_ID, "inc_id": INCIDENT_ID + 1, "name": "Elsewhere",
                             "instructions": "secret plans"},
}

TABLE_ROWS = [
    {"id": 1, "cells": {"ioc": {"value": "evil.example"}, "seen": {"value": 1659708203441}, "score": {"value": 7}}},
    {"id": 2, "cells": {"ioc": {"value": "<b>x</b>.example"}, "seen": {"value": None}, "score": {"value": 3}}},
]


@isolated_endpoints
class SoarMock(BasicResilientMock):
    """BasicResilientMock plus the endpoints fn_outbound_email uses; records every request."""

    calls = []       # class level: tests read it without a handle on the instance

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.incident = make_incident()
        self.adapter.add_matcher(self._record)

    def _record(self, request):
        # registered last, so it runs first; returning None passes the request on
        if "/rest/orgs/" in request.url:
            SoarMock.calls.append((request.method, re.sub(r"^.*/rest/orgs/\d+", "", request.url)))
        return None

    @staticmethod
    def _json(request, data, status=200):
        return requests_mock.create_response(request, status_code=status, json=data)

    @resilient_endpoint("GET", r"/types/incident\?handle_format=names$")
    def types_incident(self, request):
        return self._json(request, {"type_name": "incident", "fields": INCIDENT_FIELDS})

    @resilient_endpoint("GET", r"/types/ioc_table\?handle_format=names$")
    def types_table(self, request):
        return self._json(request, {"type_name": "ioc_table", "fields": TABLE_FIELDS})

    @resilient_endpoint("GET", r"/incidents/[0-9]+/table_data/ioc_table")
    def table_rows(self, request):
        return self._json(request, {"id": 1001, "rows": TABLE_ROWS})

    @resilient_endpoint("POST", r"/incidents/[0-9]+/artifacts/query_paged")
    def artifacts(self, request):
        return self._json(request, {"recordsTotal": len(ARTIFACTS), "data": ARTIFACTS})

    @resilient_endpoint("POST", r"/incidents/[0-9]+/comments/query")
    def notes(self, request):
        return self._json(request, NOTES)

    @resilient_endpoint("POST", r"/incidents/[0-9]+/attachments/query\?include_tasks=true")
    def attachments(self, request):
        return self._json(request, {"attachments": ATTACHMENTS, "max_results_exceeded": False})

    @resilient_endpoint("GET", r"/incidents/[0-9]+/attachments/[0-9]+/contents")
    def incident_attachment(self, request):
        attachment_id = int(re.search(r"/attachments/([0-9]+)/contents", request.url).group(1))
        return requests_mock.create_response(request, status_code=200, content=ATTACHMENT_CONTENT[attachment_id])

    @resilient_endpoint("GET", r"/tasks/[0-9]+\?handle_format=names$")
    def task(self, request):
        task_id = int(re.search(r"/tasks/([0-9]+)", request.url).group(1))
        if task_id not in TASKS:
            return self._json(request, {"success": False, "message": "Task not found"}, status=404)
        return self._json(request, TASKS[task_id])

    @resilient_endpoint("GET", r"/tasks/[0-9]+/attachments/[0-9]+/contents")
    def task_attachment(self, request):
        attachment_id = int(re.search(r"/attachments/([0-9]+)/contents", request.url).group(1))
        return requests_mock.create_response(request, status_code=200, content=ATTACHMENT_CONTENT[attachment_id])


# --- a SOAR that fails in the ways a real one can ------------------------------------------------------------
MISSING_INCIDENT_ID = 404404          # GET answers 404
BIG_INCIDENT_ID = 2400                # 12 attachments of 18 MiB each in its attachment list
PARALLEL_INCIDENT_ID = 2401           # 6 small attachments; the first 4 downloads must overlap
MIXED_INCIDENT_ID = 2402              # two small attachments, then one of 18 MiB, then a small one
SLOW_INCIDENT_ID = 2403               # its attachment list does not come in time (the client's read times out)
UNLISTED_SIZES_INCIDENT_ID = 2404     # 12 attachments of 20,000 bytes each, listed without a size
# its attachment list answered in a shape SOAR never gives (shape -> incident id)
BAD_LIST_INCIDENT_IDS = {"a list": 2405, "an entry without id": 2406, "an id that is not a number": 2407,
                         "an entry that is not an object": 2408}
BIG_ATTACHMENT_SIZE = 18 * 1024 * 1024
BROKEN_ATTACHMENT_ID = 35             # its download answers HTTP 500
UNDERSIZED_ATTACHMENT_ID = 36         # the list says 10 bytes; the download sends 64 KiB
BROKEN_JSON_TABLE = "broken_table"    # its rows are not JSON
FAULT_ATTACHMENTS = ATTACHMENTS + [
    {"type": "incident", "id": BROKEN_ATTACHMENT_ID, "name": "broken.bin", "content_type": "application/octet-stream",
     "task_id": None, "size": 100},
    {"type": "incident", "id": UNDERSIZED_ATTACHMENT_ID, "name": "undersized.bin",
     "content_type": "application/octet-stream", "task_id": None, "size": 10},
]
UNDERSIZED_CONTENT = b"u" * 65536
BIG_ATTACHMENTS = [{"type": "incident", "id": 500 + number, "name": "capture{0:02d}.pcap".format(number),
                    "content_type": "application/octet-stream", "task_id": None, "size": BIG_ATTACHMENT_SIZE}
                   for number in range(12)]
MIXED_ATTACHMENTS = [dict(BIG_ATTACHMENTS[0], name="small1.txt", size=1000),
                     dict(BIG_ATTACHMENTS[1], name="small2.txt", size=2000),
                     dict(BIG_ATTACHMENTS[2], name="huge.pcap"),
                     dict(BIG_ATTACHMENTS[3], name="small3.txt", size=10)]
MIXED_CONTENT = {item["id"]: b"m" * item["size"] for item in MIXED_ATTACHMENTS if item["size"] < 10000}
UNLISTED_SIZE_CONTENT = b"n" * 20000
UNLISTED_SIZE_ATTACHMENTS = [{"type": "incident", "id": 700 + number, "name": "unsized{0:02d}.bin".format(number),
                              "content_type": "application/octet-stream", "task_id": None} for number in range(12)]
_REPORT = {"type": "incident", "name": "report.txt", "content_type": "text/plain", "task_id": None, "size": 10}
BAD_LIST_ANSWERS = {
    BAD_LIST_INCIDENT_IDS["a list"]: [dict(_REPORT, id=1)],
    BAD_LIST_INCIDENT_IDS["an entry without id"]: {"attachments": [_REPORT]},
    BAD_LIST_INCIDENT_IDS["an id that is not a number"]: {"attachments": [dict(_REPORT, id="abc")]},
    BAD_LIST_INCIDENT_IDS["an entry that is not an object"]: {"attachments": ["report.txt"]},
}
PARALLEL_ATTACHMENTS = [{"type": "incident", "id": 600 + number, "name": "part{0}.txt".format(number),
                         "content_type": "text/plain", "task_id": None, "size": 6} for number in range(6)]


def _incident_id_of(request):
    return int(re.search(r"/incidents/([0-9]+)", request.url).group(1))


def _attachment_id_of(request):
    return int(re.search(r"/attachments/([0-9]+)/contents", request.url).group(1))


@isolated_endpoints
class FaultSoarMock(SoarMock):
    """SoarMock with the faults above. ``downloads`` lists every attachment download; ``in_flight_peak`` is the
    most downloads of PARALLEL_INCIDENT_ID running at one time."""

    downloads = []
    in_flight_peak = 0
    _in_flight = 0
    _lock = threading.Lock()
    # the first 4 parallel downloads wait here for each other: done one after another, they break it
    overlap = threading.Barrier(4, timeout=10)

    @classmethod
    def reset(cls):
        cls.downloads, cls.in_flight_peak, cls._in_flight = [], 0, 0
        cls.overlap = threading.Barrier(4, timeout=10)

    @resilient_endpoint("GET", r"/incidents/[0-9]+(\?.*)*$")
    def incident_get(self, request):
        if _incident_id_of(request) == MISSING_INCIDENT_ID:
            return self._json(request, {"success": False, "title": None, "message": "Not found"}, status=404)
        return self._json(request, dict(self.incident, id=_incident_id_of(request)))

    @resilient_endpoint("POST", r"/incidents/[0-9]+/attachments/query\?include_tasks=true")
    def attachments(self, request):
        if _incident_id_of(request) == SLOW_INCIDENT_ID:
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)")
        if _incident_id_of(request) in BAD_LIST_ANSWERS:
            return self._json(request, BAD_LIST_ANSWERS[_incident_id_of(request)])
        listed = {BIG_INCIDENT_ID: BIG_ATTACHMENTS, PARALLEL_INCIDENT_ID: PARALLEL_ATTACHMENTS,
                  MIXED_INCIDENT_ID: MIXED_ATTACHMENTS, UNLISTED_SIZES_INCIDENT_ID: UNLISTED_SIZE_ATTACHMENTS}.get(
            _incident_id_of(request), FAULT_ATTACHMENTS)
        return self._json(request, {"attachments": listed, "max_results_exceeded": False})

    @resilient_endpoint("GET", r"/incidents/[0-9]+/attachments/[0-9]+/contents")
    def incident_attachment(self, request):
        attachment_id = _attachment_id_of(request)
        FaultSoarMock.downloads.append(attachment_id)
        if attachment_id == BROKEN_ATTACHMENT_ID:
            return requests_mock.create_response(request, status_code=500, text="<html>Internal error</html>")
        if attachment_id == UNDERSIZED_ATTACHMENT_ID:
            return requests_mock.create_response(request, status_code=200, content=UNDERSIZED_CONTENT)
        if 600 <= attachment_id < 606:
            return self._parallel_download(request, attachment_id)
        if 700 <= attachment_id < 712:
            return requests_mock.create_response(request, status_code=200, content=UNLISTED_SIZE_CONTENT)
        if attachment_id in MIXED_CONTENT:
            return requests_mock.create_response(request, status_code=200, content=MIXED_CONTENT[attachment_id])
        return requests_mock.create_response(request, status_code=200, content=ATTACHMENT_CONTENT[attachment_id])

    def _parallel_download(self, request, attachment_id):
        cls = FaultSoarMock
        with cls._lock:
            cls._in_flight += 1
            cls.in_flight_peak = max(cls.in_flight_peak, cls._in_flight)
        try:
            if attachment_id < 604:
                cls.overlap.wait()
            return requests_mock.create_response(request, status_code=200,
                                                 content="part{0}".format(attachment_id - 600).encode() + b"\n")
        finally:
            with cls._lock:
                cls._in_flight -= 1

    @resilient_endpoint("GET", r"/types/broken_table\?handle_format=names$")
    def types_broken_table(self, request):
        return self._json(request, {"type_name": BROKEN_JSON_TABLE, "fields": TABLE_FIELDS})

    @resilient_endpoint("GET", r"/incidents/[0-9]+/table_data/broken_table")
    def broken_table_rows(self, request):
        return requests_mock.create_response(request, status_code=200, text='{"rows": [{"cells": ')
