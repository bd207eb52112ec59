# -*- coding: utf-8 -*-
"""Access to SOAR incident data through the REST client resilient-circuits provides.

Field definitions (``/types``) change rarely and are needed for every
templated send, so they are cached per SOAR server and org for a few minutes,
shared by all worker threads.

Every fault of a REST call (an HTTP error, a connection error, a body that is
not JSON) is a ``SoarError`` naming what was being read: the function then
ends with success false and that reason. The client retries a failed request
(resilient's request_max_retries, about 30 s with its defaults); a 4xx answer
will not change on retrying, so those are not retried. An answer of another
shape than SOAR's (a list where an object belongs, an attachment without a
numeric ``id``) is a ``SoarError`` too, never an AttributeError or KeyError.

The attachments of one send are downloaded together under one byte budget
and a deadline each (lib/soar/download.py).
"""

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from resilient import SimpleHTTPException
from resilient.co3base import BasicHTTPException
from resilient_lib import build_incident_url, build_resilient_url, build_task_url

from fn_outbound_email.lib.errors import MailError
from fn_outbound_email.lib.soar import download
from fn_outbound_email.lib.soar.download import DownloadBudget, deadline_passed, read_attachment

LOG = logging.getLogger(__name__)

# client errors are answered at once; 408 (timeout) and 429 (too many requests) may pass on retrying
NO_RETRY = [status for status in range(400, 500) if status not in (408, 429)]
REST_TIMEOUT = 60                     # seconds SOAR may take to answer one call (the client sets none)
DOWNLOAD_WORKERS = 4
API_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class SoarError(MailError):
    """A SOAR REST call failed; the message names what was being read and how SOAR answered.

    ``status_code`` is SOAR's HTTP status when it answered with one (404: no such object), else None.
    """

    def __init__(self, message, status_code=None):
        super().__init__(message)
        self.status_code = status_code


def _status_of(err):
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _fault(err):
    """How SOAR answered, in a few words (never the whole error page)."""
    response = getattr(err, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return "HTTP {0} {1}".format(response.status_code, response.reason or "").strip()
    if isinstance(err, json.JSONDecodeError):
        return "the answer is not valid JSON ({0})".format(err.msg)
    return "{0}: {1}".format(type(err).__name__, err)


def _json_kind(value):
    """What a JSON value is, in a few words, for an error message (never the value: it may be large)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else type(value).__name__


def _shape_error(what, problem):
    return SoarError("{0} could not be read from SOAR: {1}, which is not the shape SOAR answers with".format(
        what, problem))


def _object(what, answer):
    """``answer`` if it is a JSON object (None counts as an empty one); else SoarError."""
    if answer is None:
        return {}
    if not isinstance(answer, dict):
        raise _shape_error(what, "the answer is {0}, not an object".format(_json_kind(answer)))
    return answer


def _list_in(what, answer, key):
    """The list under ``key`` in the object ``answer`` (missing or null: empty); else SoarError."""
    items = _object(what, answer).get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise _shape_error(what, "its '{0}' is {1}, not an array".format(key, _json_kind(items)))
    return items


def _numeric_id(value):
    """An id as SOAR gives it (a number, or a string of digits), as an int; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _checked_attachment(what, index, item):
    """One entry of SOAR's attachment list, checked for what is read from it."""
    if not isinstance(item, dict):
        raise _shape_error(what, "entry {0} is {1}, not an object".format(index + 1, _json_kind(item)))
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise _shape_error(what, "the name of entry {0} is {1}, not a string".format(index + 1, _json_kind(name)))
    if _numeric_id(item.get("id")) is None:
        raise _shape_error(what, "entry {0} ({1}) has {2}".format(
            index + 1, repr(name)[:80], "no id" if "id" not in item else "an id that is not a number: {0}".format(
                repr(item["id"])[:40])))
    if item.get("type") == "task" and item.get("task_id") is not None and _numeric_id(item["task_id"]) is None:
        raise _shape_error(what, "entry {0} ({1}) has a task_id that is not a number: {2}".format(
            index + 1, repr(name)[:80], repr(item["task_id"])[:40]))
    return item


# what a REST call can raise besides a programming error
_REST_FAULTS = (SimpleHTTPException, BasicHTTPException, requests.RequestException, json.JSONDecodeError)


def check_api_name(name, what):
    """A SOAR API name (a data table's, a type's): it goes into a REST path, so nothing else is accepted."""
    if not isinstance(name, str) or not API_NAME.fullmatch(name):
        raise ValueError("{0} {1!r} is not a SOAR API name (lower-case letters, digits and _, not starting with "
                         "a digit)".format(what, name))
    return name


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

    # --- REST calls --------------------------------------------------------------------------------
    def _get(self, what, uri):
        try:
            return self._rest.get(uri, timeout=REST_TIMEOUT, skip_retry=NO_RETRY)
        except _REST_FAULTS as err:
            raise SoarError("{0} could not be read from SOAR: {1}".format(what, _fault(err)), _status_of(err))

    def _post(self, what, uri, payload):
        try:
            return self._rest.post(uri, payload, timeout=REST_TIMEOUT, skip_retry=NO_RETRY)
        except _REST_FAULTS as err:
            raise SoarError("{0} could not be read from SOAR: {1}".format(what, _fault(err)), _status_of(err))

    # --- incident data -------------------------------------------------------------------------
    def get_incident(self, incident_id):
        incident_id = int(incident_id)
        what = "Incident {0}".format(incident_id)
        return _object(what, self._get(what, "/incidents/{0}?handle_format=names".format(incident_id)))

    def get_task(self, incident_id, task_id):
        """Task ``task_id`` of incident ``incident_id``; a task of another incident is refused, so a template can
        read only the tasks of the incident it is rendered for."""
        incident_id, task_id = int(incident_id), int(task_id)
        task = self._get("Task {0}".format(task_id), "/tasks/{0}?handle_format=names".format(task_id))
        if not isinstance(task, dict):
            raise SoarError("Task {0} could not be read from SOAR: the answer is not a task".format(task_id))
        if task.get("inc_id") is not None and str(task.get("inc_id")) != str(incident_id):
            raise SoarError("Task {0} belongs to incident {1}, not to incident {2}".format(
                task_id, task.get("inc_id"), incident_id))
        return task

    def get_artifacts(self, incident_id):
        # resilient_lib.get_artifacts makes this call, without a way to skip retries of a 4xx
        incident_id = int(incident_id)
        result = self._post("The artifacts of incident {0}".format(incident_id),
                            "/incidents/{0}/artifacts/query_paged".format(incident_id), {})
        return (result.get("data") if isinstance(result, dict) else None) or []

    def get_notes(self, incident_id):
        incident_id = int(incident_id)
        notes = self._post("The notes of incident {0}".format(incident_id),
                           "/incidents/{0}/comments/query?include_tasks=false&handle_format=names".format(incident_id),
                           {})
        if isinstance(notes, dict):  # some versions page the result; IBM's app read "root_comments"
            notes = notes.get("data") or notes.get("root_comments") or []
        return notes or []

    def list_attachments(self, incident_id):
        """Incident and task attachments (metadata only, with each one's ``size`` in bytes)."""
        incident_id = int(incident_id)
        what = "The attachment list of incident {0}".format(incident_id)
        result = self._post(what, "/incidents/{0}/attachments/query?include_tasks=true".format(incident_id), {})
        return [_checked_attachment(what, index, item)
                for index, item in enumerate(_list_in(what, result, "attachments"))]

    def get_attachment_contents(self, incident_id, attachments, max_bytes, total_bytes=None, cancelled=None):
        """The contents of ``attachments`` (as list_attachments gives them), in their order.

        Downloaded DOWNLOAD_WORKERS at a time; attachment i may be at most ``max_bytes[i]`` bytes, all of them
        together at most ``total_bytes`` (default: the largest of max_bytes), and a download stops as soon as
        either is passed, or at DOWNLOAD_DEADLINE. ``cancelled`` (an Event) stops the downloads early.
        """
        incident_id = int(incident_id)
        stop = cancelled or threading.Event()
        if not attachments:
            return []
        budget = DownloadBudget(max(max_bytes) if total_bytes is None else total_bytes)
        # One REST client serves all threads: resilient-circuits itself shares one SimpleClient across its
        # worker threads (get_resilient_client caches it); requests' connection pool is thread safe and the
        # cookie jar it clears for API-key logins takes a lock.
        with ThreadPoolExecutor(max_workers=min(DOWNLOAD_WORKERS, len(attachments)),
                                thread_name_prefix="soar-attachment") as pool:
            futures = [pool.submit(self._attachment_content, incident_id, item, limit, budget, stop)
                       for item, limit in zip(attachments, max_bytes)]
            try:
                return [future.result() for future in futures]
            except BaseException:
                stop.set()                  # the running downloads end at their next chunk
                for future in futures:
                    future.cancel()
                raise

    def _attachment_content(self, incident_id, attachment, max_bytes, budget, stop):
        what = "Attachment '{0}' (id {1}) of incident {2}".format(attachment.get("name"), attachment.get("id"),
                                                                  incident_id)
        if attachment.get("type") == "task" and attachment.get("task_id"):
            uri = "/tasks/{0}/attachments/{1}/contents".format(int(attachment["task_id"]), int(attachment["id"]))
        else:
            uri = "/incidents/{0}/attachments/{1}/contents".format(incident_id, int(attachment["id"]))

        def too_large():
            return SoarError("{0} is larger than the {1} bytes left of max_message_size for it (more than SOAR's "
                             "attachment list said); nothing was sent".format(what, max_bytes))

        def over_budget():
            return SoarError("{0} and the attachments downloaded with it are more than the {1} bytes max_message_size "
                             "leaves for attachments (more than SOAR's attachment list said); nothing was "
                             "sent".format(what, budget.total_bytes))

        try:
            content = read_attachment(self._rest, uri, max_bytes, budget, stop, over_budget, REST_TIMEOUT)
        except _REST_FAULTS as err:
            if deadline_passed(err):
                raise SoarError("{0} could not be downloaded from SOAR within {1:g} s; nothing was sent".format(
                    what, download.DOWNLOAD_DEADLINE))
            budget.check()                 # a download stopped by another one's overrun fails as that one did
            raise SoarError("{0} could not be downloaded from SOAR: {1}".format(what, _fault(err)))
        if content is None:
            raise too_large()
        return content

    def get_datatable_rows(self, incident_id, table_name):
        incident_id = int(incident_id)
        check_api_name(table_name, "Data table name")
        what = "Data table '{0}' of incident {1}".format(table_name, incident_id)
        result = self._get(what, "/incidents/{0}/table_data/{1}?handle_format=names".format(incident_id, table_name))
        return _list_in(what, result, "rows")

    def query_incidents(self, conditions, max_rows):
        """The newest ``max_rows`` incidents matching ``conditions`` (SOAR query filter conditions), and how many
        matched in all."""
        query = {"filters": [{"conditions": conditions}], "sorts": [{"field_name": "create_date", "type": "desc"}],
                 "start": 0, "length": int(max_rows)}
        result = self._post("The incidents matching the query", "/incidents/query_paged?handle_format=names", query)
        if not isinstance(result, dict):
            return [], 0
        incidents = [item for item in result.get("data") or [] if isinstance(item, dict)]
        total = result.get("recordsTotal")
        return incidents, total if isinstance(total, int) else len(incidents)

    # --- definitions -------------------------------------------------------------------------------
    def get_field_definitions(self, type_name="incident"):
        """{field name: field definition} for a SOAR type (incident, a data table ...), cached."""
        check_api_name(type_name, "Type name")
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
            what = "The field definitions of '{0}'".format(type_name)
            fields = _object(what, self._get(what, "/types/{0}?handle_format=names".format(type_name))).get(
                "fields") or {}
            if isinstance(fields, list):
                if not all(isinstance(field, dict) and isinstance(field.get("name"), str) for field in fields):
                    raise _shape_error(what, "a field in its 'fields' is not an object with a name")
                fields = {field["name"]: field for field in fields}
            elif not isinstance(fields, dict):
                raise _shape_error(what, "its 'fields' is {0}, not an object".format(_json_kind(fields)))
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
