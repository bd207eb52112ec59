# -*- coding: utf-8 -*-
"""What one template render may use: time, rendered output, and the size of any one value it makes.

Templates are written by playbook authors, and a single expression can ask for gigabytes
(``'a' * 10**8``, ``'{0:>300000000}'.format(1)``) or a nested loop for hours. Checking the
rendered text afterwards is too late, so the sandbox (lib/templates/render.py) asks this module
*before* each operation that can make a large value, and between output chunks and loop
iterations for the deadline. The limits of the render in progress are per thread: one
environment serves all of resilient-circuits' worker threads.
"""

import re
import string
import threading
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0                      # seconds for one render
DEFAULT_MAX_OUTPUT = 5 * 1024 * 1024        # characters of rendered text, and of any one value
# bytes of address space of a render worker process (lib/templates/worker.py); Python with the app's modules takes
# about 70 MiB of it before rendering anything
DEFAULT_MAX_MEMORY = 512 * 1024 * 1024
MIN_MAX_MEMORY = 128 * 1024 * 1024
# an int of more bits is refused: 2**10**9 would take minutes and gigabytes before any size check could see it
MAX_INT_BITS = 1 << 16

_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (list, dict, set, bytearray)
_SIZED = _SEQUENCES + _CONTAINERS
# printf-style conversions: their width and precision (a '*' takes them from the arguments)
_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
# a standard format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")
_PADDING_METHODS = frozenset(("center", "ljust", "rjust", "zfill"))


class TemplateLimitExceeded(Exception):
    """A render went past one of its limits; the renderer turns it into a TemplateError naming the template."""


@dataclass(frozen=True)
class TemplateLimits:
    timeout: float = DEFAULT_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT
    max_memory: int = DEFAULT_MAX_MEMORY        # enforced by the render worker process, not in the sandbox


DEFAULT_LIMITS = TemplateLimits()
_active = threading.local()


class _Budget:
    def __init__(self, limits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout

    def output_exceeded(self):
        raise TemplateLimitExceeded("its output grew past template_max_output ({0} characters)".format(
            self.limits.max_output))

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded("it ran longer than template_timeout ({0:g} s)".format(self.limits.timeout))


@contextmanager
def render_budget(limits):
    """The budget of one render on this thread (a render inside a render keeps the outer one's)."""
    outer = getattr(_active, "budget", None)
    budget = outer or _Budget(limits or DEFAULT_LIMITS)
    _active.budget = budget
    try:
        yield budget
    finally:
        _active.budget = outer


def _max_size():
    budget = getattr(_active, "budget", None)
    return (budget.limits if budget else DEFAULT_LIMITS).max_output


def check_time():
    budget = getattr(_active, "budget", None)
    if budget is not None:
        budget.check_time()


def check_size(size, what):
    limit = _max_size()
    if size > limit:
        raise TemplateLimitExceeded("{0} would be {1} characters, more than template_max_output ({2})".format(
            what, size, limit))


# values this small are let through without looking up the render's cap (most call results are)
_HARMLESS_SIZE = 1024


def check_value(value, what="a value"):
    """A value the template reached or made: a string, sequence or container larger than the cap is refused."""
    if isinstance(value, _SIZED) and len(value) > _HARMLESS_SIZE:
        check_size(len(value), what)
    return value


def _check_int_bits(bits):
    if bits > MAX_INT_BITS:
        raise TemplateLimitExceeded("a number would have about {0} bits, more than {1}".format(bits, MAX_INT_BITS))


def check_binop(operator, left, right):
    """Before ``left <operator> right`` runs: refuse results larger than the cap."""
    check_time()
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                check_size(len(sequence) * max(count, 0), "a repeated value")
        if isinstance(left, int) and isinstance(right, int):
            _check_int_bits(left.bit_length() + right.bit_length())
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            _check_int_bits(left.bit_length() * right)
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            check_size(len(left) + len(right), "a joined value")
    elif operator == "%" and isinstance(left, str):
        check_printf_format(left, right)


def check_printf_format(text, arguments=()):
    """Widths and precisions of a printf-style format (``'%300000000d' % 1``), and the strings put into it
    (``'%s' * 1000 % ((big,) * 1000)``), add up to at most the cap."""
    total = len(text) + sum(len(argument) for argument in _printf_arguments(arguments) if isinstance(argument, str))
    for match in _PRINTF_FIELD.finditer(text):
        width, precision = match.group(1), match.group(2)
        if "*" in (width, precision):
            raise TemplateLimitExceeded("a '*' width or precision in a % format is not allowed")
        total += int(width or 0) + int(precision or 0)
    check_size(total, "a formatted value")


def _printf_arguments(arguments):
    if isinstance(arguments, tuple):
        return arguments
    if isinstance(arguments, dict):
        return arguments.values()
    return (arguments,)


def check_str_format(text):
    """Widths and precisions of a str.format template add up to at most the cap; nested specs are refused
    (their width would only be known while formatting, after the memory is taken)."""
    total = len(text)
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return                  # str.format raises the same error itself, with nothing allocated
    for _, field_name, spec, _ in fields:
        if field_name is None or not spec:
            continue
        if "{" in spec:
            raise TemplateLimitExceeded("a replacement field inside a format spec is not allowed")
        match = _FORMAT_SPEC.match(spec)
        total += int(match.group(1) or 0) + int(match.group(2) or 0)
    check_size(total, "a formatted value")


def check_call(function, args):
    """Before a call from a template: the str methods that can make a string much larger than their input."""
    check_time()
    owner = getattr(function, "__self__", None)
    if not isinstance(owner, str) or not isinstance(function, types.BuiltinMethodType):
        return
    name = function.__name__
    if name in _PADDING_METHODS and args and isinstance(args[0], int):
        check_size(args[0], "a padded string")
    elif name == "expandtabs":
        tab_size = args[0] if args and isinstance(args[0], int) else 8
        check_size(len(owner) + owner.count("\t") * max(tab_size, 0), "a string with expanded tabs")
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        check_joined(owner, args[0])
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        check_replaced(owner, args[0], args[1])


def check_result(function, result):
    """After a call: its result, and a list, dict or set it changed in place (``l.extend(l)`` doubles l)."""
    owner = getattr(function, "__self__", None)
    if isinstance(owner, _CONTAINERS):
        check_value(owner, "a list, dict or set")
    return check_value(result, "a call's result")


def check_joined(separator, items):
    """``items`` is any sized collection (a list, a range, a dict ...); only its strings' lengths are known."""
    size = len(separator) * max(len(items) - 1, 0)
    size += sum(len(item) for item in items if isinstance(item, str))
    check_size(size, "a joined string")


def check_replaced(text, old, new):
    count = text.count(old) if old else len(text) + 1
    check_size(len(text) + count * (len(new) - len(old)), "a replaced string")
