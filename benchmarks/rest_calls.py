# -*- coding: utf-8 -*-
"""rest_calls_per_send: SOAR REST calls of one templated send after the first, counted at the SOAR stand-in."""

from benchmarks.common import Figure, CountingSoarRest, SmtpSink, app_settings, sample_mailer, templated_request
from fn_outbound_email.lib.soar.client import clear_field_cache

TARGET = 2


def measure():
    clear_field_cache()
    with SmtpSink() as sink:
        settings = app_settings(sink.port)
        rest = CountingSoarRest()
        # each SOAR function call builds its own Mailer and SoarClient; the caches are the app's
        sample_mailer(settings, rest).send(templated_request(settings, rest))
        first = list(rest.calls)
        del rest.calls[:]
        sample_mailer(settings, rest).send(templated_request(settings, rest))
        second = list(rest.calls)
    clear_field_cache()
    return Figure("rest_calls_per_send", TARGET, measured=len(second),
                  detail="first send {0} ({1}); then {2} ({3})".format(
                      len(first), ", ".join(first), len(second), ", ".join(second)))
