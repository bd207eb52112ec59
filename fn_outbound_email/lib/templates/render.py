# -*- coding: utf-8 -*-
"""Rendering playbook authors' Jinja templates safely.

* ``SandboxedEnvironment``: no attribute path from a template reaches Python
  internals, and on ``template_helper`` only its public template methods.
* Autoescape is on exactly when the template source contains HTML elements, so
  incident values cannot inject markup into HTML mail while text mail shows
  quotes and ampersands as they are.
* Compiled templates are cached (bounded, thread safe) by source text; template
  files are read again when they change.
* Every render is bounded (lib/templates/limits.py): a deadline and an output cap
  checked while rendering, the operators, calls and filters that can make one
  huge value checked before they run, and every filter's result checked after.
  These are the first line; the app renders in worker processes with hard limits
  (lib/templates/worker.py) for what no check inside Python can stop.
"""

import functools

import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sized

import jinja2
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from fn_outbound_email.lib.errors import MailError, TemplateError
from fn_outbound_email.lib.message.html_tokens import looks_like_html
from fn_outbound_email.lib.templates import check as template_check
from fn_outbound_email.lib.templates import limits as checks
from fn_outbound_email.lib.templates.helper import TemplateHelper
from fn_outbound_email.lib.templates.limits import TemplateLimitExceeded, render_budget
from fn_outbound_email.lib.templates.sanitize import sanitize_html

LOG = logging.getLogger(__name__)

CACHE_SIZE = 256


class RenderedTemplate(str):
    """The rendered text; ``is_html`` says whether the template was HTML (and so the mail is)."""

    is_html = False
    warnings = ()       # template_check.TemplateWarning: undefined values and the like, with their lines


class _DeadlineCodeGenerator(CodeGenerator):
    """Compiled templates check the render's deadline in every loop iteration, also of a loop that writes
    nothing and calls nothing (a nested loop over a list would otherwise never be stopped)."""

    _loop_body = None

    def visit_For(self, node, frame):
        self._loop_body = node.body
        super().visit_For(node, frame)

    def blockvisit(self, nodes, frame):
        if nodes is self._loop_body:
            self.writeline("environment.check_deadline()")
        super().blockvisit(nodes, frame)

    def visit_Concat(self, node, frame):
        """``a ~ b`` (which the sandbox cannot intercept as an operator) goes through check_concat."""
        self.write("environment.check_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class _MailSandbox(SandboxedEnvironment):
    code_generator_class = _DeadlineCodeGenerator
    # range() is already limited to jinja2.sandbox.MAX_RANGE (100000) items by the sandbox's safe_range
    intercepted_binops = frozenset(("*", "**", "+", "%"))

    def is_safe_attribute(self, obj, attr, value):
        if isinstance(obj, TemplateHelper):
            return attr in TemplateHelper.TEMPLATE_METHODS
        return super().is_safe_attribute(obj, attr, value)

    check_deadline = staticmethod(checks.check_time)

    def call_binop(self, context, operator, left, right):
        checks.check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (the sandbox's own signature)
        checks.check_call(__obj, args)
        return checks.check_result(__obj, super().call(__context, __obj, *args, **kwargs))

    @staticmethod
    def check_concat(joined):
        # checked once made: each part is a value the cap already allowed, so at most a few times the cap
        return checks.check_value(joined, "a joined value")

    def wrap_str_format(self, value):
        """str.format and format_map, with their format specs' widths checked before formatting."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template = value.__self__

        def checked_format(*args, **kwargs):
            checks.check_str_format(template)
            return wrapper(*args, **kwargs)
        return checked_format


def _checked_filter(function, check=None):
    """The filter with ``check`` before it runs (when given) and its result's size checked after."""
    # functools.wraps keeps jinja_pass_arg (join and replace take the eval context first)
    @functools.wraps(function)
    def checked(*args, **kwargs):
        if check is not None:
            check(*args, **kwargs)
        return checks.check_value(function(*args, **kwargs), "the result of a filter")
    return checked


def _check_center(value, width=80, *args, **kwargs):
    if isinstance(width, int):
        checks.check_size(width, "a centered string")


def _check_indent(value, width=4, *args, **kwargs):
    lines = str(value).count("\n") + 1
    checks.check_size(len(str(value)) + lines * (width if isinstance(width, int) else len(str(width))),
                      "an indented string")


def _check_format(value, *args, **kwargs):
    checks.check_printf_format(str(value), kwargs or args)


def _check_replace(eval_context, value, old, new, *args, **kwargs):
    checks.check_replaced(str(value), str(old), str(new))


def _check_join(eval_context, value, separator="", *args, **kwargs):
    if isinstance(value, Sized):        # a generator's length is known only once joined (the worker's limits)
        checks.check_joined(str(separator), value)


def _check_slice(eval_context, value, slices, *args, **kwargs):     # slice has an async variant: the context first
    # each slice is one list, even an empty one: slice(30000000) makes 30 million
    if isinstance(slices, int):
        checks.check_size(slices, "a sliced list")


# the filters that can make a value much larger than their input, checked before they run
_LIMITED_FILTERS = {"center": _check_center, "indent": _check_indent, "format": _check_format,
                    "replace": _check_replace, "join": _check_join, "slice": _check_slice}


def _make_environment(autoescape):
    # template_check: undefined values and printed methods are noted as warnings for the template's author
    environment = _MailSandbox(autoescape=autoescape, extensions=["jinja2.ext.do"],
                               undefined=template_check.RecordingUndefined, finalize=template_check.finalize)
    environment.filters["safe_html"] = sanitize_html
    for name, function in list(environment.filters.items()):
        environment.filters[name] = _checked_filter(function, _LIMITED_FILTERS.get(name))
    # lipsum(300000) spends many seconds inside one call, where no deadline check runs; no mail needs it
    del environment.globals["lipsum"]
    return environment


class TemplateRenderer:
    """Compiles (once) and renders templates; one instance serves all threads."""

    def __init__(self, cache_size=CACHE_SIZE):
        self._environments = {True: _make_environment(True), False: _make_environment(False)}
        self._cache = OrderedDict()
        self._files = TemplateFiles()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, source, name="inline template"):
        """The compiled template for ``source``; raises TemplateError naming the line of a syntax error."""
        key = (name, source)
        with self._lock:
            template = self._cache.get(key)
            if template is not None:
                self._cache.move_to_end(key)
                return template
        is_html = looks_like_html(source)
        environment = self._environments[is_html]
        try:
            code = environment.compile(source, name=name, filename=name)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError("Template '{0}' has a syntax error on line {1}: {2}".format(name, err.lineno, err.message))
        template = environment.template_class.from_code(environment, code, environment.make_globals(None), None)
        template.is_html = is_html
        with self._lock:
            self._cache[key] = template
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return template

    def render(self, source, context, name="inline template", limits=None):
        """Render ``source`` with ``context`` into a RenderedTemplate (a str that knows whether it is HTML).

        ``limits`` (a TemplateLimits, default 10 s and 5 MiB) bound the render's time and output.
        Every failure is a TemplateError with the template's name and line; a SOAR fault while the
        template reads incident data stays the MailError that names it.
        """
        template = self.compile(source, name)
        helper = context.get("template_helper")
        if isinstance(helper, TemplateHelper):
            context = dict(context, template_helper=helper.for_template(template.is_html))
        try:
            with template_check.recording(context) as recorder, render_budget(limits) as budget:
                # chunk by chunk, so the output cap and the deadline stop a render while it runs; as
                # Template.render does, without generate()'s extra generator around every chunk
                parts, size, max_output = [], 0, budget.limits.max_output
                try:
                    for chunk in template.root_render_func(template.new_context(dict(context))):
                        parts.append(chunk)
                        size += len(chunk)
                        if size > max_output:
                            budget.output_exceeded()
                        if not len(parts) & 31:     # a chunk is a few characters; loops check the clock too
                            budget.check_time()
                except Exception:
                    template.environment.handle_exception()     # raises it again, with the template's lines
            rendered = RenderedTemplate("".join(parts))
            rendered.is_html = template.is_html
            rendered.warnings = recorder.warnings
            template_check.report_once(template, name, recorder.warnings)
            return rendered
        except TemplateLimitExceeded as err:
            raise TemplateError("Template '{0}'{1} was stopped: {2}".format(name, _line_of(name), err))
        except MemoryError:
            # in a render worker, its address space limit; the worker retires after it (lib/templates/worker_main.py)
            raise TemplateError("Template '{0}'{1} was stopped: it needed more memory than template_max_memory "
                                "allows".format(name, _line_of(name)))
        except SecurityError as err:
            raise TemplateError("Template '{0}'{1} tried something the sandbox does not allow: {2}".format(
                name, _line_of(name), template_check.readable(err)))
        except MailError:
            raise
        except Exception as err:  # any runtime error of a template is the template's fault
            raise TemplateError("Template '{0}' failed{1}: {2}: {3}".format(
                name, _line_of(name), type(err).__name__, template_check.readable(err)))

    def render_file(self, path, context, limits=None):
        return self.render(self._files.read(path), context, name=os.path.basename(path), limits=limits)


class TemplateFiles:
    """Template files' text, read again only when a file's modification time or size changed (thread safe)."""

    def __init__(self):
        self._sources = {}          # template file path -> ((mtime, size), text)
        self._lock = threading.Lock()

    def read(self, path):
        """The template file's text; TemplateError when it cannot be read."""
        try:
            status = os.stat(path)
            version = (status.st_mtime_ns, status.st_size)
            with self._lock:
                cached = self._sources.get(path)
            if cached and cached[0] == version:
                return cached[1]
            with open(path, "r", encoding="utf-8") as template_file:
                source = template_file.read()
        except OSError as err:
            raise TemplateError("Template file '{0}' cannot be read: {1}".format(path, err.strerror or err))
        with self._lock:
            self._sources[path] = (version, source)
        return source


def _line_of(name):
    """The template line of the exception being handled, when Jinja's traceback shows it."""
    line = None
    traceback = sys.exc_info()[2]
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == name:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return " on line {0}".format(line) if line else ""


# one renderer (and so one compiled-template cache) for the whole app
renderer = TemplateRenderer()
