# -*- coding: utf-8 -*-
"""What the app logs, recorded where no other handler has touched the records yet.

resilient-circuits' RedactingFilter, attached to its handlers for the whole test session, rewrites a record's
arguments in place (a dict becomes its keys, a secret may be masked) before pytest's caplog sees them, so a
check on caplog depends on which tests ran before. A handler on the app's own loggers runs first: records
reach a logger's own handlers before its parents'.
"""

import logging

import pytest

# the app's own code, and resilient_lib (its RequestsCommon logs request and response bodies at DEBUG)
RECORDED_LOGGERS = ("fn_outbound_email", "resilient_lib")


class AppLogRecorder(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []
        self.unformattable = []        # records whose format string does not fit their arguments

    def emit(self, record):
        try:
            line = record.getMessage()
        except Exception as err:       # noqa: BLE001 (a broken record is what we are looking for)
            self.unformattable.append("{0}:{1}: {2!r} % {3!r} ({4})".format(
                record.pathname, record.lineno, record.msg, record.args, err))
            return
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(line)

    @property
    def text(self):
        return "\n".join(self.lines)


@pytest.fixture
def app_log():
    """Every line the app logs during the test, at DEBUG, formatted as it was emitted."""
    recorder = AppLogRecorder()
    loggers = [logging.getLogger(name) for name in RECORDED_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(recorder)
        logger.setLevel(logging.DEBUG)
    try:
        yield recorder
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(recorder)
            logger.setLevel(level)
