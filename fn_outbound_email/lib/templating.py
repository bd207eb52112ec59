# -*- coding: utf-8 -*-
"""Rendering playbook authors' Jinja templates safely.

* ``SandboxedEnvironment``: no attribute path from a template reaches Python
  internals, and on ``template_helper`` only its public template methods.
* Autoescape is on exactly when the template source contains HTML elements, so
  incident values cannot inject markup into HTML mail while text mail shows
  quotes and ampersands as they are.
* Compiled templates are cached (bounded, thread safe) by source text; template
  files are read again when they change.
"""

import logging
import os
import sys
import threading
from collections import OrderedDict

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from fn_outbound_email.lib import template_check
from fn_outbound_email.lib.errors import TemplateError
from fn_outbound_email.lib.html_tokens import looks_like_html
from fn_outbound_email.lib.sanitize import sanitize_html
from fn_outbound_email.lib.template_helper import TemplateHelper

LOG = logging.getLogger(__name__)

CACHE_SIZE = 256


class RenderedTemplate(str):
    """The rendered text; ``is_html`` says whether the template was HTML (and so the mail is)."""

    is_html = False
    warnings = ()       # template_check.TemplateWarning: undefined values and the like, with their lines


class _MailSandbox(SandboxedEnvironment):
    def is_safe_attribute(self, obj, attr, value):
        if isinstance(obj, TemplateHelper):
            return attr in TemplateHelper.TEMPLATE_METHODS
        return super().is_safe_attribute(obj, attr, value)


def _make_environment(autoescape):
    # template_check: undefined values and printed methods are noted as warnings for the template's author
    environment = _MailSandbox(autoescape=autoescape, extensions=["jinja2.ext.do"],
                               undefined=template_check.RecordingUndefined, finalize=template_check.finalize)
    environment.filters["safe_html"] = sanitize_html
    return environment


class TemplateRenderer:
    """Compiles (once) and renders templates; one instance serves all threads."""

    def __init__(self, cache_size=CACHE_SIZE):
        self._environments = {True: _make_environment(True), False: _make_environment(False)}
        self._cache = OrderedDict()
        self._sources = {}          # template file path -> ((mtime, size), text)
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

    def render(self, source, context, name="inline template"):
        """Render ``source`` with ``context`` into a RenderedTemplate (a str that knows whether it is HTML).

        Every failure is a TemplateError with the template's name and line.
        """
        template = self.compile(source, name)
        try:
            with template_check.recording(context) as recorder:
                rendered = RenderedTemplate(template.render(**context))
            rendered.is_html = template.is_html
            rendered.warnings = recorder.warnings
            template_check.report_once(template, name, recorder.warnings)
            return rendered
        except SecurityError as err:
            raise TemplateError("Template '{0}'{1} tried something the sandbox does not allow: {2}".format(
                name, _line_of(name), template_check.readable(err)))
        except TemplateError:
            raise
        except Exception as err:  # any runtime error of a template is the template's fault
            raise TemplateError("Template '{0}' failed{1}: {2}: {3}".format(
                name, _line_of(name), type(err).__name__, template_check.readable(err)))

    def render_file(self, path, context):
        return self.render(self._read(path), context, name=os.path.basename(path))

    def _read(self, path):
        """The template file's text, read again only when its modification time or size changed."""
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
