# -*- coding: utf-8 -*-
"""lib/delivery/base.py's Transport: what every transport gets by implementing only ``attempt``.

A transport here is a script of attempt outcomes (the coming HTTP transports plug in the same way); the
SMTP transport's use of the same loop is tested against real servers in test_faults.py.
"""

import types

import pytest

from fn_outbound_email.lib.delivery import base
from fn_outbound_email.lib.delivery.base import DeliveryReport, Transport, uncertain_error
from fn_outbound_email.lib.errors import DeliveryError


class ScriptedTransport(Transport):
    """Each attempt takes the next outcome: an exception to raise or (accepted, refused) to return."""

    protocol = "Test"

    def __init__(self, outcomes, retries=2):
        super().__init__(types.SimpleNamespace(retries=retries))
        self.outcomes = list(outcomes)
        self.attempts = []

    def attempt(self, envelope_from, recipients, message, smtputf8):
        self.attempts.append(list(recipients))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture(autouse=True)
def no_backoff_wait(monkeypatch):
    sleeps = []
    monkeypatch.setattr(base, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


def test_a_transient_failure_is_retried_with_doubling_backoff(no_backoff_wait):
    transport = ScriptedTransport([DeliveryError("busy", transient=True), DeliveryError("busy", transient=True),
                                   (["a@example.com"], {})])
    report = transport.deliver("s@example.com", ["a@example.com"], b"m")
    assert report == DeliveryReport(accepted=["a@example.com"], refused={})
    assert len(transport.attempts) == 3
    assert no_backoff_wait == [base.BACKOFF_SECONDS, 2 * base.BACKOFF_SECONDS]


def test_an_uncertain_failure_is_never_retried_even_when_transient():
    err = uncertain_error("Test server x:1", OSError("reset"))
    err.transient = True
    transport = ScriptedTransport([err, (["a@example.com"], {})])
    with pytest.raises(DeliveryError) as raised:
        transport.deliver("s@example.com", ["a@example.com"], b"m")
    assert raised.value.uncertain and "not sent again" in str(raised.value)
    assert len(transport.attempts) == 1


def test_recipients_refused_for_now_are_retried_alone_and_the_others_reported():
    transport = ScriptedTransport([(["a@example.com"], {"b@example.com": (451, "451 later"),
                                                        "c@example.com": (550, "550 no such user")}),
                                   (["b@example.com"], {})])
    report = transport.deliver("s@example.com", ["a@example.com", "b@example.com", "c@example.com"], b"m")
    assert transport.attempts == [["a@example.com", "b@example.com", "c@example.com"], ["b@example.com"]]
    assert report.accepted == ["a@example.com", "b@example.com"]
    assert report.refused == {"c@example.com": "550 no such user"}


def test_every_recipient_refused_is_an_error_naming_each_and_the_protocol():
    transport = ScriptedTransport([([], {"a@example.com": (550, "550 unknown")})])
    with pytest.raises(DeliveryError) as raised:
        transport.deliver("s@example.com", ["a@example.com"], b"m")
    assert str(raised.value) == "The Test server refused every recipient: a@example.com: 550 unknown"
    assert not raised.value.transient


def test_a_failure_after_some_recipients_took_the_message_reports_the_rest_as_refused():
    transport = ScriptedTransport([(["a@example.com"], {"b@example.com": (451, "451 later")}),
                                   DeliveryError("connection lost", transient=True),
                                   DeliveryError("connection lost", transient=True)])
    report = transport.deliver("s@example.com", ["a@example.com", "b@example.com"], b"m")
    assert report.accepted == ["a@example.com"]
    assert report.refused == {"b@example.com": "connection lost"}
