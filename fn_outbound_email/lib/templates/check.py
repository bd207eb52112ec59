# -*- coding: utf-8 -*-
"""Telling template authors about mistakes that would otherwise render silently.

Jinja renders an undefined name, or a field the incident does not have
(``{{ incident.no_such_field }}``), as empty text. While a template renders,
``RecordingUndefined`` notes each such value where it is used (printed, tested,
looped over) with the template line, and ``finalize`` notes a method printed
without its call parentheses (``{{ template_helper.get_notes }}``), which would
otherwise put a Python object description into the mail. The warnings go with
the rendered text (``outbound-email render`` prints them) and the send path logs
each one once per template.

Messages name things the way a template author writes them ("the incident has no
field 'x'", "template_helper has no method 'y'"): no Python object repr reaches a
warning, an error or a function's result (``readable`` cleans what Jinja and
Python write).

Recording happens at use, not at lookup, so ``x | default(...)`` and
``x is defined`` (the ways to test for a missing value) never warn.
"""

import contextlib
import contextvars
import difflib
import inspect
import logging
import re
import sys
import threading
from dataclasses import dataclass
from typing import Optional

from jinja2 import Undefined
from jinja2.utils import missing

LOG = logging.getLogger(__name__)

# the names the app puts in every template's context, as a template author knows them
_DESCRIPTIONS = {"incident": "the incident", "mail": "mail (the function inputs)", "artifact": "artifact",
                 "note": "note"}
# Python's default text for an object: '<module.Class object at 0x7f...>', '<bound method C.m of ...>', ...
_ADDRESS_REPR = re.compile(r"<([^<>]*?) at 0x[0-9a-fA-F]+>")
_BOUND_METHOD = re.compile(r"<bound method ([\w.]+) of [^<>]*>")
_QUALIFIED_OBJECT = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*) object\b")
_TYPE_WORDS = {dict: "a dict", list: "a list", tuple: "a list", str: "a text", int: "a number", float: "a number",
               bool: "a true/false value"}

_current = contextvars.ContextVar("fn_outbound_email_template_recorder", default=None)
_report_lock = threading.Lock()


@dataclass(frozen=True)
class TemplateWarning:
    line: Optional[int]
    message: str

    def __str__(self):
        return "line {0}: {1}".format(self.line, self.message) if self.line else self.message


class _Recorder:
    """The warnings of one render, and the context's names for the objects it holds."""

    def __init__(self, context):
        self.context = context
        self.warnings = []

    def name_of(self, obj):
        for name, value in self.context.items():
            if value is obj:
                return name
        return None

    def path_of(self, obj):
        """How a template names ``obj``: a context name, or a key of a context dict one or two levels down
        (``incident.name``, ``incident.properties.team``); None when it is none of those."""
        name = self.name_of(obj)
        if name is not None:
            return name
        for name, value in self.context.items():
            for key, item in (value.items() if isinstance(value, dict) else ()):
                if item is obj:
                    return "{0}.{1}".format(name, key)
                for inner_key, inner in (item.items() if isinstance(item, dict) else ()):
                    if inner is obj:
                        return "{0}.{1}.{2}".format(name, key, inner_key)
        return None

    def add(self, message):
        warning = TemplateWarning(_template_line(), message)
        if warning not in self.warnings:
            self.warnings.append(warning)


@contextlib.contextmanager
def recording(context):
    """Within the block, undefined values and printed objects of this thread's render are noted."""
    recorder = _Recorder(context)
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


def _template_line():
    """The template line being rendered: the first frame up the stack that runs compiled template code."""
    frame = sys._getframe(1)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            return template.get_corresponding_lineno(frame.f_lineno)
        frame = frame.f_back
    return None


def did_you_mean(name, candidates):
    """' (did you mean 'x'?)' when ``name`` looks like a misspelling of one of ``candidates``, else ''."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, [str(candidate) for candidate in candidates], n=1, cutoff=0.75)
    return " (did you mean '{0}'?)".format(close[0]) if close else ""


def _describe(obj, recorder):
    name = recorder.name_of(obj) if recorder else None
    if name:
        return _DESCRIPTIONS.get(name, name)
    if obj is None:
        return "None"
    return _TYPE_WORDS.get(type(obj), "a value of type {0}".format(type(obj).__name__))


def undefined_message(undefined):
    """What an Undefined means, in template terms."""
    hint = undefined._undefined_hint
    if hint:
        return readable(hint)
    name, obj = undefined._undefined_name, undefined._undefined_obj
    if obj is missing:
        return "'{0}' is undefined".format(name)
    recorder = _current.get()
    context_name = recorder.name_of(obj) if recorder else None
    if context_name == "incident":
        properties = obj.get("properties") if isinstance(obj, dict) else None
        if isinstance(properties, dict) and name in properties:
            return "the incident has no field '{0}' (it is a custom field: use incident.properties.{0})".format(name)
        return "the incident has no field '{0}'{1}".format(name, did_you_mean(name, obj if isinstance(obj, dict)
                                                                                  else ()))
    incident = recorder.context.get("incident") if recorder else None
    if isinstance(incident, dict) and obj is incident.get("properties") and obj is not None:
        return "the incident has no custom field '{0}'{1}".format(name, did_you_mean(name, obj))
    if context_name == "template_helper":
        methods = getattr(obj, "TEMPLATE_METHODS", ())
        return "template_helper has no method '{0}'{1}".format(name, did_you_mean(name, methods))
    if not isinstance(name, str):
        return "{0} has no item {1}".format(_describe(obj, recorder), readable(repr(name)))
    return "{0} has no attribute or key '{1}'".format(_describe(obj, recorder), name)


class RecordingUndefined(Undefined):
    """Jinja's default Undefined (empty text, false, nothing to loop over) that notes where it is used."""

    __slots__ = ()

    @property
    def _undefined_message(self):
        return undefined_message(self)

    def _note(self):
        recorder = _current.get()
        if recorder is not None:
            recorder.add(self._undefined_message + " (rendered as empty)")

    def __str__(self):
        self._note()
        return super().__str__()

    def __iter__(self):
        self._note()
        return super().__iter__()

    def __bool__(self):
        self._note()
        return super().__bool__()

    def __len__(self):
        self._note()
        return super().__len__()


def finalize(value):
    """Jinja's finalize for ``{{ ... }}``: a function, method or plain object prints nothing, with a warning."""
    if isinstance(value, (str, int, float, Undefined)) or value is None:
        return value
    if callable(value):
        owner = getattr(value, "__self__", None)
        recorder = _current.get()
        owner_name = recorder.path_of(owner) if recorder and owner is not None else None
        method = "{0}.{1}".format(owner_name, value.__name__) if owner_name and hasattr(value, "__name__") else \
            getattr(value, "__name__", "a function")
        warn("{0} is a method: call it with parentheses, e.g. {{{{ {0}{1} }}}} (printed nothing)".format(
            method, "()" if _takes_no_arguments(value) else "(...)"))
        return ""
    if _ADDRESS_REPR.search(str(value)):
        warn("{0} cannot be shown as text (printed nothing)".format(_describe(value, _current.get())))
        return ""
    return value


def _takes_no_arguments(function):
    """True when ``function`` can be called with no arguments (``name.upper``), False when it needs some or its
    signature cannot be read (then the hint shows ``(...)``)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return all(parameter.default is not parameter.empty or
               parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
               for parameter in signature.parameters.values())


def warn(message):
    """Note a warning for the template being rendered (template_helper's methods use it too); outside a render
    it is dropped."""
    recorder = _current.get()
    if recorder is not None:
        recorder.add(message)


def readable(text):
    """``text`` without Python object reprs: '<a.b.Helper object at 0x7f..>' and "'a.b.Helper object'" name the
    class only, a bound method is named 'Class.method'."""
    text = str(text)
    previous = None
    while previous != text:                 # inner reprs first: '<bound method C.m of <C object at 0x..>>'
        previous = text
        text = _ADDRESS_REPR.sub(lambda match: _short_type(match.group(1)), text)
    text = _BOUND_METHOD.sub(lambda match: match.group(1), text)
    return _QUALIFIED_OBJECT.sub(lambda match: match.group(1), text)


def _short_type(description):
    """'fn_outbound_email.lib.x.Helper object' -> 'Helper'; 'function f' stays."""
    description = re.sub(r"\s+object$", "", description.strip())
    return description.rsplit(".", 1)[-1] if " " not in description else description


def report_once(template, name, warnings):
    """Log the warnings this compiled template has not logged before (so once per template, not per mail)."""
    with _report_lock:
        reported = getattr(template, "reported_warnings", None)
        if reported is None:
            reported = template.reported_warnings = set()
        new = [warning for warning in warnings if warning not in reported]
        reported.update(new)
    for warning in new:
        LOG.warning("Template '%s' %s", name, warning)
