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

from fn_outbound_email.lib.soar.client import check_api_name

LOG = logging.getLogger(__name__)

_DATE_TYPES = ("datetimepicker", "datepicker")


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
        "get_list_from_string", "get_action_field_value", "get_value_as_string", "get_task",
    ))

    def __init__(self, soar, date_format=None):
        self._soar = soar
        self._date_format = date_format
        self._table_rows = {}        # (incident id, table name) -> rows: one helper serves one render
        self._markup = None          # the template's kind, set by for_template: True HTML, False text

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
        from fn_outbound_email.lib.message.compose import html_to_text
        return html_to_text(html).strip()

    def _datatable_rows(self, incident_id, name):
        """A data table's rows, fetched from SOAR once per render however often the template asks."""
        key = (str(incident_id), name)
        if key not in self._table_rows:
            self._table_rows[key] = self._soar.get_datatable_rows(incident_id, name)
        return self._table_rows[key]

    # --- values -------------------------------------------------------------------------------------
    def get_incident_value(self, incident, field_name):
        """The incident field as a display string; None for an unknown field."""
        field_def = self._soar.get_field_definitions("incident").get(field_name)
        if field_def is None or incident is None:
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

        def visit(items):
            for item in items or []:
                entry = dict(item)
                entry["text"] = _text_of(item.get("text")) or ""
                flat.append(entry)
                if get_children:
                    visit(item.get("children"))

        visit([item for item in note or [] if _SENT_MAIL_NOTE not in str(_text_of(item.get("text")) or "").lower()])
        return flat

    def get_task(self, incident_id, task_id):
        """A task of the incident as data: id, name, and its instructions as rich text (sanitized HTML in an HTML
        template, plain text in a text one). Templates show task text this way, never by having it written into
        their source, where whoever can edit a task could write template code."""
        task = self._soar.get_task(incident_id, task_id)
        instructions = _text_of(task.get("instructions"))
        return {"id": task.get("id"), "name": _text_of(task.get("name")) or "",
                "instructions": self._rich_text(str(instructions)) if instructions else None}

    def get_datatable(self, name, incident_id, html=True):
        """The incident's data table as an HTML table, or its rows as dicts with html=False."""
        check_api_name(name, "Data table name")         # it becomes part of a REST path
        columns = sorted(self._soar.get_field_definitions(name).values(), key=lambda column: column.get("order", 0))
        rows = []
        for row in self._datatable_rows(incident_id, name):
            cells = row.get("cells") or {}
            rows.append({column["name"]: self.get_value_as_string(
                column, (cells.get(column["name"]) or {}).get("value")) for column in columns})
        if not html:
            return rows
        head = "".join("<th>{0}</th>".format(escape(column.get("text") or column["name"])) for column in columns)
        body = "".join("<tr>{0}</tr>".format("".join(
            "<td>{0}</td>".format(escape(row[column["name"]] or "")) for column in columns)) for row in rows)
        return Markup('<table border="1"><tr>{0}</tr>{1}</table>'.format(head, body))

    def get_datatable_value_array(self, incident_id, name, field_name):
        """One column's values across the rows, comma joined."""
        values = [row.get(field_name) for row in self.get_datatable(name, incident_id, html=False)]
        return ", ".join(dict.fromkeys(value for value in values if value))     # each value once, as the original

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
