# -*- coding: utf-8 -*-
"""Access to SOAR incident data through the REST client resilient-circuits provides.

Field definitions (``/types``) change rarely and are needed for every
templated send, so they are cached per SOAR server and org for a few minutes,
shared by all worker threads.
"""

import logging
import re
import threading
import time

from resilient_lib import build_incident_url, build_resilient_url, build_task_url, get_artifacts, get_file_attachment

LOG = logging.getLogger(__name__)

FIELD_CACHE_SECONDS = 600
_field_cache = {}
_field_cache_lock = threading.Lock()
_field_fetch_locks = {}        # cache key -> the lock its fetch holds
# resilient_lib writes the port always; a link shows it only when it is not HTTPS's default, as browsers do
_DEFAULT_HTTPS_PORT = re.compile(r"^(https://[^/:]+):443(?=/|$)", re.IGNORECASE)


def _cached_fields(key):
    with _field_cache_lock:
        cached = _field_cache.get(key)
    return cached[1] if cached and cached[0] > time.monotonic() else None


class SoarClient:
    """The SOAR REST calls the app makes, and nothing else."""

    def __init__(self, rest_client, soar_host=None, soar_port=None):
        self._rest = rest_client
        self._base_url = build_resilient_url(soar_host, soar_port or 443) if soar_host else rest_client.base_url

    @classmethod
    def for_app(cls, rest_client, opts):
        """The client for the app: links point at the SOAR server named in app.config [resilient]."""
        soar_options = opts.get("resilient") or {}
        return cls(rest_client, soar_options.get("host"), soar_options.get("port"))

    @property
    def org_id(self):
        return getattr(self._rest, "org_id", None)

    # --- incident data -------------------------------------------------------------------------
    def get_incident(self, incident_id):
        return self._rest.get("/incidents/{0}?handle_format=names".format(int(incident_id)))

    def get_artifacts(self, incident_id):
        return get_artifacts(self._rest, int(incident_id)) or []

    def get_notes(self, incident_id):
        notes = self._rest.post("/incidents/{0}/comments/query?include_tasks=false&handle_format=names".format(
            int(incident_id)), {})
        if isinstance(notes, dict):  # some versions page the result
            notes = notes.get("data", [])
        return notes or []

    def list_attachments(self, incident_id):
        """Incident and task attachments (metadata only)."""
        result = self._rest.post("/incidents/{0}/attachments/query?include_tasks=true".format(int(incident_id)), {})
        return (result or {}).get("attachments", [])

    def get_attachment_content(self, incident_id, attachment):
        task_id = attachment.get("task_id") if attachment.get("type") == "task" else None
        return get_file_attachment(self._rest, int(incident_id), task_id=task_id, attachment_id=attachment["id"])

    def get_datatable_rows(self, incident_id, table_name):
        result = self._rest.get("/incidents/{0}/table_data/{1}?handle_format=names".format(
            int(incident_id), table_name))
        return (result or {}).get("rows", [])

    # --- definitions -------------------------------------------------------------------------------
    def get_field_definitions(self, type_name="incident"):
        """{field name: field definition} for a SOAR type (incident, a data table ...), cached."""
        key = (self._base_url, self.org_id, type_name)
        fields = _cached_fields(key)
        if fields is not None:
            return fields
        with _field_cache_lock:
            fetch_lock = _field_fetch_locks.setdefault(key, threading.Lock())
        # one thread fetches an expired or missing entry; threads arriving meanwhile wait and take its answer
        with fetch_lock:
            fields = _cached_fields(key)
            if fields is not None:
                return fields
            type_def = self._rest.get("/types/{0}?handle_format=names".format(type_name)) or {}
            fields = type_def.get("fields") or {}
            if isinstance(fields, list):
                fields = {field["name"]: field for field in fields}
            with _field_cache_lock:
                _field_cache[key] = (time.monotonic() + FIELD_CACHE_SECONDS, fields)
            return fields

    def get_type_field(self, type_name, field_name):
        """One field of a SOAR type (a playbook's input form, actioninvocation ...)."""
        # a missing type or field, or a key without permission, will not change on retrying
        return self._rest.get("/types/{0}/fields/{1}".format(type_name, field_name), skip_retry=[403, 404])

    def update_type_field(self, type_name, field_name, field_definition):
        return self._rest.put("/types/{0}/fields/{1}".format(type_name, field_name), field_definition)

    # --- links ---------------------------------------------------------------------------------------
    def incident_url(self, incident_id):
        return build_incident_url(self._link_base_url, incident_id, self.org_id)

    def task_url(self, incident_id, task_id):
        return build_task_url(self._link_base_url, incident_id, task_id, self.org_id)

    @property
    def _link_base_url(self):
        return _DEFAULT_HTTPS_PORT.sub(r"\1", self._base_url)


def clear_field_cache():
    with _field_cache_lock:
        _field_cache.clear()
