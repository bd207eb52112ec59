# -*- coding: utf-8 -*-
"""Incident data from JSON files, answered the way SOAR's REST API answers.

``OfflineSoarRest`` has the surface of the resilient REST client that
``lib.soar.SoarClient`` uses (``get``, ``post``, ``get_content``,
``base_url``, ``org_id``), so ``outbound-email demo`` and ``render`` run the
app's real code (SoarClient, template_helper, Mailer) with no SOAR at all.

The bundled sample (``data/sample``) has an incident, its field definitions,
artifacts, notes with a child note, an ``email_conversations`` data table and
one attachment file. Each piece can be replaced by a file of the user's,
saved from the SOAR REST API.
"""

import copy
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List

from fn_outbound_email.lib.settings import PACKAGE_DIR
from fn_outbound_email.lib.soar.client import SoarClient, SoarError, clear_field_cache

SAMPLE_DIR = os.path.join(PACKAGE_DIR, "data", "sample")
# a documentation domain: links in previews point nowhere real
OFFLINE_BASE_URL = "https://soar.example.com:443"
DEFAULT_ORG_ID = 201


class OfflineDataError(ValueError):
    """An incident data file is missing or malformed, or a template asked for data it does not have."""


@dataclass
class AttachmentFile:
    id: int
    name: str
    path: str

    def metadata(self, incident_id):
        """The attachment as POST /incidents/{id}/attachments/query lists it."""
        return {"type": "incident", "id": self.id, "name": self.name, "inc_id": incident_id, "task_id": None,
                "size": os.path.getsize(self.path)}


@dataclass
class IncidentData:
    incident: dict
    fields: Dict[str, dict]
    artifacts: List[dict] = field(default_factory=list)
    notes: List[dict] = field(default_factory=list)
    datatables: Dict[str, dict] = field(default_factory=dict)      # name -> {"fields": {...}, "rows": [...]}
    attachments: List[AttachmentFile] = field(default_factory=list)

    @property
    def incident_id(self):
        return self.incident["id"]


# --- reading files -----------------------------------------------------------------------------------------
def _read_json(path, what):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise OfflineDataError("The {0} file '{1}' does not exist".format(what, path))
    except json.JSONDecodeError as err:
        raise OfflineDataError("The {0} file '{1}' is not valid JSON (line {2}, column {3}: {4})".format(
            what, path, err.lineno, err.colno, err.msg))
    except (OSError, UnicodeDecodeError) as err:
        raise OfflineDataError("The {0} file '{1}' cannot be read: {2}".format(what, path, err))


def _sample(name):
    return os.path.join(SAMPLE_DIR, name)


def _as_list(value, what, path):
    """A list, or the ``data`` list of a paged SOAR query result."""
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise OfflineDataError("The {0} file '{1}' must hold a JSON list of objects (or a query result with "
                               "'data')".format(what, path))
    return value


def _as_field_map(value, what, path):
    """Field definitions as {name: definition}, from a list, a map, or a /types/<type> response."""
    if isinstance(value, dict) and "fields" in value:
        value = value["fields"]
    if isinstance(value, list):
        if not all(isinstance(item, dict) and item.get("name") for item in value):
            raise OfflineDataError("Every field definition in the {0} file '{1}' needs a 'name'".format(what, path))
        return {item["name"]: item for item in value}
    if isinstance(value, dict) and all(isinstance(item, dict) for item in value.values()):
        return value
    raise OfflineDataError("The {0} file '{1}' must hold field definitions: a list of fields, a map of name to "
                           "field, or a GET /types/<type> response".format(what, path))


def _incident(path):
    incident = _read_json(path, "incident")
    if not isinstance(incident, dict):
        raise OfflineDataError("The incident file '{0}' must hold a JSON object (GET /incidents/<id>)".format(path))
    try:
        incident["id"] = int(incident.get("id"))
    except (TypeError, ValueError):
        raise OfflineDataError("The incident in '{0}' needs a numeric 'id'".format(path))
    return incident


def _datatables(path):
    tables = _read_json(path, "data tables")
    if not isinstance(tables, dict):
        raise OfflineDataError("The data tables file '{0}' must map table names to "
                               "{{\"fields\": [...], \"rows\": [...]}}".format(path))
    return {name: {"fields": _as_field_map(table.get("fields") or [], "data table '{0}'".format(name), path),
                   "rows": _as_list(table.get("rows") or [], "data table '{0}'".format(name), path)}
            for name, table in tables.items() if isinstance(table, dict)}


def _attachment_files(folder):
    names = sorted(name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name)))
    return [AttachmentFile(id=index, name=name, path=os.path.join(folder, name))
            for index, name in enumerate(names, start=1)]


def load_incident_data(incident=None, artifacts=None, notes=None, fields=None):
    """Incident data from the given JSON files; every file not given comes from the bundled sample."""
    return IncidentData(
        incident=_incident(incident or _sample("incident.json")),
        fields=_as_field_map(_read_json(fields or _sample("fields.json"), "fields"), "fields",
                             fields or _sample("fields.json")),
        artifacts=_as_list(_read_json(artifacts or _sample("artifacts.json"), "artifacts"), "artifacts",
                           artifacts or _sample("artifacts.json")),
        notes=_as_list(_read_json(notes or _sample("notes.json"), "notes"), "notes", notes or _sample("notes.json")),
        datatables=_datatables(_sample("datatables.json")),
        attachments=_attachment_files(_sample("attachments")),
    )


def add_data_file_arguments(parser):
    """The options that replace pieces of the bundled sample with files saved from SOAR (render and demo)."""
    offline = parser.add_argument_group("incident data files (each one not given comes from the bundled sample)")
    offline.add_argument("--incident", metavar="FILE", help="GET /incidents/<id>?handle_format=names")
    offline.add_argument("--artifacts", metavar="FILE", help="POST /incidents/<id>/artifacts/query_paged")
    offline.add_argument("--notes", metavar="FILE", help="POST /incidents/<id>/comments/query")
    offline.add_argument("--fields", metavar="FILE", help="GET /types/incident (or its fields list)")
    return offline


def describe_sources(args):
    """Which incident data came from the user's files and which from the bundled sample, in one line."""
    given = [(name, getattr(args, name, None)) for name in ("incident", "artifacts", "notes", "fields")]
    own = ["{0} from {1}".format(name, path) for name, path in given if path]
    sample = [name for name, path in given if not path] + ["attachments", "data tables"]
    if not own:
        return "the bundled sample incident (with its artifacts, notes, attachments and data tables)"
    return "{0}; {1} from the bundled sample".format("; ".join(own), ", ".join(sample))


# --- the REST stand-in -------------------------------------------------------------------------------------
class OfflineSoarRest:
    """Answers the REST calls of ``SoarClient`` (and resilient_lib's helpers) from an IncidentData."""

    base_url = OFFLINE_BASE_URL

    def __init__(self, data):
        self._data = data
        self.org_id = data.incident.get("org_id") or DEFAULT_ORG_ID
        incident = r"^/incidents/(?P<incident_id>\d+)"
        self._routes = {
            "GET": [
                (incident + r"$", self._incident),
                (r"^/types/(?P<type_name>[\w:-]+)$", self._type),
                (incident + r"/table_data/(?P<table>[\w:-]+)$", self._table_rows),
            ],
            "POST": [
                (incident + r"/artifacts/query_paged$", self._artifacts),
                (incident + r"/comments/query$", self._notes),
                (incident + r"/attachments/query$", self._attachments),
            ],
            "CONTENT": [
                (incident + r"/attachments/(?P<attachment_id>\d+)/contents$", self._attachment_content),
            ],
        }

    # the resilient SimpleClient's methods
    def get(self, uri, *args, **kwargs):
        return self._answer("GET", uri)

    def post(self, uri, payload=None, *args, **kwargs):
        return self._answer("POST", uri)

    def get_content(self, uri, *args, **kwargs):
        return self._answer("CONTENT", uri)

    def _answer(self, kind, uri):
        path = uri.split("?", 1)[0]
        for pattern, handler in self._routes[kind]:
            match = re.match(pattern, path)
            if match:
                arguments = match.groupdict()
                if "incident_id" in arguments:
                    self._check_incident(int(arguments.pop("incident_id")))
                return copy.deepcopy(handler(**arguments))
        raise OfflineDataError("The offline incident data cannot answer {0} {1}".format(
            "GET" if kind == "CONTENT" else kind, uri))

    def _check_incident(self, incident_id):
        if incident_id != self._data.incident_id:
            raise OfflineDataError("Incident {0} is not in the offline data (it has incident {1})".format(
                incident_id, self._data.incident_id))

    # the answers
    def _incident(self):
        return self._data.incident

    def _type(self, type_name):
        if type_name == "incident":
            return {"type_name": "incident", "fields": self._data.fields}
        if type_name in self._data.datatables:
            return {"type_name": type_name, "fields": self._data.datatables[type_name]["fields"]}
        # as SOAR answers for a type it does not have (HTTP 404): template_helper renders the table as '-'
        raise SoarError("The offline incident data has no data table '{0}' (it has: {1})".format(
            type_name, ", ".join(sorted(self._data.datatables)) or "none"), status_code=404)

    def _table_rows(self, table):
        self._type(table)                       # the same clear error for an unknown table
        return {"rows": self._data.datatables[table]["rows"]}

    def _artifacts(self):
        return {"recordsTotal": len(self._data.artifacts), "data": self._data.artifacts}

    def _notes(self):
        return self._data.notes

    def _attachments(self):
        return {"attachments": [item.metadata(self._data.incident_id) for item in self._data.attachments],
                "max_results_exceeded": False}

    def _attachment_content(self, attachment_id):
        for item in self._data.attachments:
            if item.id == int(attachment_id):
                with open(item.path, "rb") as handle:
                    return handle.read()
        raise OfflineDataError("The offline incident data has no attachment {0}".format(attachment_id))


def offline_soar_client(data):
    """The app's SoarClient over the offline data."""
    # SoarClient caches field definitions per server and org; offline files share one fake server
    clear_field_cache()
    return SoarClient(OfflineSoarRest(data))
