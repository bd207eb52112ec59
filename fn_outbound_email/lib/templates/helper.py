# -*- coding: utf-8 -*-
"""``template_helper``: the functions templates may call to read incident data.

Templates are written by playbook authors, so the helper keeps everything it
holds (the SOAR client, settings) in underscore attributes, which the sandbox
never lets a template reach; only the methods in ``TEMPLATE_METHODS`` are
visible from a template.
"""

import copy
import logging
import re
import threading
import time
from datetime import datetime, timezone

from markupsafe import Markup, escape

from fn_outbound_email.lib.soar.client import SoarError, check_api_name
from fn_outbound_email.lib.templates.check import did_you_mean, warn

LOG = logging.getLogger(__name__)

_DATE_TYPES = ("datetimepicker", "datepicker")
# what a data table that does not exist renders as, as in the original app
MISSING_TABLE = "-"
# get_query_result shows at most this many incidents (the newest): its table goes into one mail
QUERY_MAX_ROWS = 100


def _text_of(value):
    """Rich text arrives as {"format": ..., "content": ...}; plain text as a string."""
    if isinstance(value, dict) and "content" in value:
        return value.get("content")
    return value


def _name_of(value):
    """A select value given as an object ({"id": ..., "name": ...}) shows its name, as in the original app."""
    if isinstance(value, dict) and "name" in value:
        return value.get("name")
    return _text_of(value)


# A root note holding this text is the original app's own "mail sent" note (its example post-processing
# script writes it, with the mail's body); the original leaves such notes out of get_notes, so a template
# that lists notes does not copy earlier mails into every new one. Ours does the same.
_SENT_MAIL_NOTE = "email sent if mail server is valid"


def _note_entry(note):
    """A note as get_notes and notes_helper list it: its fields, with its text as a string."""
    entry = dict(note)
    entry["text"] = _text_of(note.get("text")) or ""
    return entry


def _html_table(columns, rows):
    """Rows of display values ({column name: text}) as an HTML table with the columns' labels as headers."""
    head = "".join("<th>{0}</th>".format(escape(column.get("text") or column["name"])) for column in columns)
    body = "".join("<tr>{0}</tr>".format("".join(
        "<td>{0}</td>".format(escape(row.get(column["name"]) or "")) for column in columns)) for row in rows)
    return Markup('<table border="1"><tr>{0}</tr>{1}</table>'.format(head, body))


_CONDITION_KEYS = frozenset(("field_name", "method", "value", "evaluation_id"))


def checked_query_conditions(conditions):
    """SOAR query conditions as get_query_result takes them: a list of {"field_name", "method"[, "value"]}; any
    other shape is a clear error instead of a SOAR error page."""
    conditions = [conditions] if isinstance(conditions, dict) else conditions
    if not isinstance(conditions, (list, tuple)) or not conditions:
        raise ValueError("get_query_result: query_conditions must be a list of conditions such as "
                         "{'field_name': 'plan_status', 'method': 'equals', 'value': 'A'}")
    for condition in conditions:
        if not isinstance(condition, dict) or not isinstance(condition.get("field_name"), str) or \
                not isinstance(condition.get("method"), str) or not set(condition) <= _CONDITION_KEYS:
            raise ValueError("get_query_result: each condition needs field_name and method (and value), got "
                             "{0!r}".format(condition))
    return [dict(condition) for condition in conditions]


class LazyList:
    """A list fetched from SOAR the first time a template looks at it."""

    def __init__(self, loader):
        self._loader = loader
        self._items = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._items is None:
                self._items = list(self._loader() or [])
            return self._items

    def __iter__(self):
        return iter(self._load())

    def __len__(self):
        return len(self._load())

    def __getitem__(self, index):
        return self._load()[index]

    def __bool__(self):
        return bool(self._load())

    @property
    def loaded(self):
        return self._items is not None


class TemplateHelper:
    """Methods available to templates as ``template_helper.<method>(...)``."""

    TEMPLATE_METHODS = frozenset((
        "get_incident_value", "get_artifacts", "get_notes", "generate_incident_url", "generate_task_url",
        "get_datatable", "get_datatable_value_array", "format_timestamp", "get_timestamp", "regex_replace",
        "get_list_from_string", "get_action_field_value", "get_value_as_string",
        "get_field_defs", "get_datatable_value", "notes_helper", "get_query_result",
        "get_task",         # this app's: task text for templates as data
    ))

    def __init__(self, soar, date_format=None):
        self._soar = soar
        self._date_format = date_format
        self._table_rows = {}        # (incident id, table name) -> rows: one helper serves one render
        self._markup = None          # the template's kind, set by for_template: True HTML, False text

    # the render worker's parts (lib/templates/worker.py): the app answers the worker's SOAR reads with ``soar``,
    # the worker's own helper formats dates with ``date_format``; neither is a template method (TEMPLATE_METHODS)
    @property
    def soar(self):
        return self._soar

    @property
    def date_format(self):
        return self._date_format

    def for_template(self, is_html):
        """This helper for one template (the renderer calls it; not a template method): SOAR rich text comes
        as sanitized HTML in an HTML template and as plain text in a text one, instead of its raw markup
        (which an HTML template would show escaped and a text mail would show as tags)."""
        helper = copy.copy(self)     # the same SOAR client and per-render cache
        helper._markup = bool(is_html)
        return helper

    def _rich_text(self, html):
        if self._markup is None:
            return html
        if self._markup:
            from fn_outbound_email.lib.templates.sanitize import sanitize_html
            return sanitize_html(html)
        from fn_outbound_email.lib.message.plain_text import html_to_text
        return html_to_text(html).strip()

    def _datatable_rows(self, incident_id, name):
        """A data table's rows, fetched from SOAR once per render however often the template asks."""
        key = (str(incident_id), name)
        if key not in self._table_rows:
            self._table_rows[key] = self._soar.get_datatable_rows(incident_id, name)
        return self._table_rows[key]

    def _datatable(self, name, incident_id):
        """(columns in display order, rows as {column name: display value}), or None with a template warning
        when SOAR has no data table of that name (the original app rendered '-' then; any other fault of SOAR
        still fails the send, naming it)."""
        check_api_name(name, "Data table name")         # it becomes part of a REST path
        try:
            columns = sorted(self._soar.get_field_definitions(name).values(), key=lambda column: column.get("order", 0))
            raw_rows = self._datatable_rows(incident_id, name)
        except SoarError as err:
            if err.status_code != 404:
                raise
            warn("SOAR has no data table '{0}' (rendered as '{1}')".format(name, MISSING_TABLE))
            return None
        rows = [{column["name"]: self.get_datatable_value(column, row) for column in columns} for row in raw_rows]
        return columns, rows

    # --- values -------------------------------------------------------------------------------------
    def get_field_defs(self, type_name):
        """{field name: field definition} of a SOAR type ('incident', 'actioninvocation', a data table's name),
        cached; an empty dict with a template warning when SOAR has no such type."""
        try:
            return self._soar.get_field_definitions(type_name)
        except SoarError as err:
            if err.status_code != 404:
                raise
            warn("SOAR has no type '{0}' (get_field_defs gave no fields)".format(type_name))
            return {}

    def get_incident_value(self, incident, field_name):
        """The incident field as a display string; None for an unknown field (with a template warning, as
        ``incident.no_such_field`` has)."""
        fields = self._soar.get_field_definitions("incident")
        field_def = fields.get(field_name)
        if field_def is None:
            warn("get_incident_value: the incident has no field '{0}'{1} (gave None)".format(
                field_name, did_you_mean(field_name, fields)))
            return None
        if incident is None:
            return None
        holder = incident.get(field_def.get("prefix")) if field_def.get("prefix") else incident
        value = (holder or {}).get(field_name)
        return self.get_value_as_string(field_def, value)

    def get_value_as_string(self, field_def, value):
        """Format a value the way SOAR shows it, according to its field definition."""
        if value is None:
            return None
        input_type = (field_def or {}).get("input_type")
        if input_type in _DATE_TYPES and isinstance(value, (int, float)):
            return self.format_timestamp(value)
        if isinstance(value, list) or input_type in ("select", "multiselect"):
            labels = {entry.get("value"): entry.get("label") for entry in (field_def or {}).get("values") or []}
            if isinstance(value, list):
                return ", ".join(str(_name_of(item) if isinstance(item, dict) else labels.get(item, item))
                                 for item in value)
            if value in labels:
                return str(labels[value])
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, dict) and str(value.get("format", "")).lower() == "html" and value.get("content"):
            return self._rich_text(str(value["content"]))
        value = _text_of(value)
        return None if value is None else str(value)

    def get_datatable_value(self, field_def, table_row):
        """One data table row's value of the column ``field_def`` describes, as a display string."""
        cells = (table_row.get("cells") if isinstance(table_row, dict) else None) or {}
        cell = cells.get((field_def or {}).get("name")) or {}
        return self.get_value_as_string(field_def, cell.get("value") if isinstance(cell, dict) else None)

    def get_action_field_value(self, action, field_name):
        """A field of an activity form (rule/playbook inputs) from its properties; a select's id shows its label."""
        if not isinstance(action, dict):
            return None
        properties = action.get("properties") or action.get("inputs") or {}
        value = properties.get(field_name, action.get(field_name))
        if isinstance(value, int) and not isinstance(value, bool):
            # select values arrive as ids; their labels live in the activity field's definition
            field_def = self._soar.get_field_definitions("actioninvocation").get(field_name) or {}
            labels = {entry.get("value"): entry.get("label") for entry in field_def.get("values") or []}
            return labels.get(value, value)
        return _text_of(value)

    # --- related data ------------------------------------------------------------------------------
    def get_artifacts(self, artifact):
        """Artifacts as dicts with value, description (as text), type and the rest."""
        result = []
        for item in artifact or []:
            item = dict(item)
            item["description"] = _text_of(item.get("description"))
            result.append(item)
        return result

    def get_notes(self, note, get_children=True):
        """Notes flattened, each with its text; children follow their parent when asked. Root notes the original
        app wrote about its own sent mails are left out, as the original does."""
        flat = []
        for item in note or []:
            if _SENT_MAIL_NOTE in str(_text_of(item.get("text")) or "").lower():
                continue
            flat.append(_note_entry(item))
            if get_children:
                self.notes_helper(item, flat)
        return flat

    def notes_helper(self, note, note_list):
        """Append every descendant of ``note`` (children, their children ...) to the list ``note_list``, each
        after its parent and with its text, as get_notes lists them. Prints nothing."""
        for child in (note or {}).get("children") or []:
            note_list.append(_note_entry(child))
            self.notes_helper(child, note_list)
        return ""

    def get_task(self, incident_id, task_id):
        """A task of the incident as data: id, name, and its instructions as rich text (sanitized HTML in an HTML
        template, plain text in a text one). Templates show task text this way, never by having it written into
        their source, where whoever can edit a task could write template code."""
        task = self._soar.get_task(incident_id, task_id)
        instructions = _text_of(task.get("instructions"))
        return {"id": task.get("id"), "name": _text_of(task.get("name")) or "",
                "instructions": self._rich_text(str(instructions)) if instructions else None}

    def get_datatable(self, name, incident_id, html=True):
        """The incident's data table as an HTML table, or its rows as dicts with html=False; '-' when SOAR has
        no such table."""
        table = self._datatable(name, incident_id)
        if table is None:
            return MISSING_TABLE
        columns, rows = table
        return _html_table(columns, rows) if html else rows

    def get_datatable_value_array(self, incident_id, name, field_name):
        """One column's values across the rows, comma joined; '-' when SOAR has no such table."""
        table = self._datatable(name, incident_id)
        if table is None:
            return MISSING_TABLE
        values = [row.get(field_name) for row in table[1]]
        return ", ".join(dict.fromkeys(value for value in values if value))     # each value once, as the original

    def get_query_result(self, query_conditions, want_fields_list, exclude_incidents=()):
        """An HTML table of the incidents matching ``query_conditions`` (SOAR query conditions, e.g.
        ``[{"field_name": "plan_status", "method": "equals", "value": "A"}]``), newest first, one column per
        incident field in ``want_fields_list``, leaving out the incident ids in ``exclude_incidents``.

        The original app's version never worked (it rendered a template it did not ship). This one reads at
        most QUERY_MAX_ROWS incidents in one query, with a template warning when more matched.
        """
        conditions = checked_query_conditions(query_conditions)
        field_names = [want_fields_list] if isinstance(want_fields_list, str) else list(want_fields_list or [])
        if not field_names or not all(isinstance(name, str) for name in field_names):
            raise ValueError("get_query_result: want_fields_list must be a list of incident field names")
        if isinstance(exclude_incidents, (int, str)):
            exclude_incidents = [exclude_incidents]
        excluded = {str(incident_id) for incident_id in exclude_incidents or []}
        fetched, total = self._soar.query_incidents(conditions, QUERY_MAX_ROWS + len(excluded))
        kept = [incident for incident in fetched if str(incident.get("id")) not in excluded]
        incidents = kept[:QUERY_MAX_ROWS]
        if total > len(fetched) or len(kept) > len(incidents):
            warn("get_query_result shows the newest {0} incidents; {1} match the conditions".format(
                len(incidents), total))
        definitions = self._soar.get_field_definitions("incident")
        columns = [definitions.get(name) or {"name": name} for name in field_names]
        rows = [{name: self.get_incident_value(incident, name) for name in field_names} for incident in incidents]
        return _html_table(columns, rows)

    # --- links -----------------------------------------------------------------------------------------
    def generate_incident_url(self, incident_id):
        return self._soar.incident_url(incident_id)

    def generate_task_url(self, incident_id, task_id):
        return self._soar.task_url(incident_id, task_id)

    # --- small utilities ---------------------------------------------------------------------------
    def format_timestamp(self, epoch_ms):
        """Epoch milliseconds as ISO 8601 in UTC (without an offset, as the original app writes it), or with the
        app.config date_format."""
        if epoch_ms in (None, ""):
            return None
        moment = datetime.fromtimestamp(int(epoch_ms) / 1000.0, tz=timezone.utc)
        return moment.strftime(self._date_format) if self._date_format else moment.replace(tzinfo=None).isoformat()

    def get_timestamp(self, offset=0):
        """Now as whole epoch seconds, plus ``offset`` seconds (the original app's units)."""
        return int(round(time.time() + float(offset or 0)))

    def regex_replace(self, value, pattern, replacement):
        return re.sub(pattern, replacement, "" if value is None else str(value))

    def get_list_from_string(self, value):
        """'a, b;c d a' → ['a', 'b', 'c', 'd']: split on commas, semicolons and spaces, each item once (as the
        original app does); a list or tuple is returned as it is."""
        if isinstance(value, (list, tuple)):
            return value
        return list(dict.fromkeys(item.strip() for item in re.split(r"[,; ]", str(value or "")) if item.strip()))
