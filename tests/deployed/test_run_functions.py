# -*- coding: utf-8 -*-
"""The functions as SOAR runs them: `resilient-circuits run` takes function messages from ActiveMQ, reads the
incident from the SOAR simulator over HTTPS, sends to a local SMTP receiver and answers on the reply-to queue."""

import os

import pytest

from tests.support.smtp_server import SmtpTestServer
from tests.support.circuits_process import SLOWNESS, Replicas
from tests.support.soar_simulator import INCIDENT_ID

REPLY_TIMEOUT = 60 * SLOWNESS
TEMPLATE = "Incident {{ incident.name }}: {{ artifact | map(attribute='value') | join(', ') }}"


@pytest.fixture(scope="module")
def receiver():
    with SmtpTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory, broker, soar, tls_pki, receiver):
    """One replica for the module."""
    running = Replicas(tmp_path_factory.mktemp("run-functions"), broker, soar, tls_pki.ca_file)
    try:
        yield running.start(1, receiver.port)[0]
    finally:
        running.stop_all()


def final_reply(publisher, correlation_id):
    finals = publisher.final_replies([correlation_id], REPLY_TIMEOUT)[correlation_id]
    assert len(finals) == 1, publisher.replies(correlation_id)
    return finals[0]


def mails_with(receiver, subject):
    return [mail for mail in receiver.messages if mail.message["Subject"] == subject]


def test_send_email2_with_template_and_attachment(app, publisher, receiver, soar):
    correlation_id = publisher.invoke("send_email2", {
        "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": "deployed template",
        "mail_inline_template": TEMPLATE, "mail_attachments": "Prüfbericht ä.pdf"})
    reply = final_reply(publisher, correlation_id)
    results = reply["results"]
    assert results["success"] is True, results["reason"]
    [mail] = mails_with(receiver, "deployed template")
    message = mail.message
    body = message.get_body(("html", "plain")).get_content()
    assert "Phishing wave" in body and "203.0.113.7" in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "Prüfbericht ä.pdf"
    assert attachment.get_content() == b"%PDF-1.4 fake\n"
    # a first delivery: the Message-ID is the invocation's own, and the result has its documented shape
    assert message["Message-ID"] == results["content"]["message_id"]
    assert message["Message-ID"].startswith("<soar.") and "redelivered" not in results["content"]
    # the app read the incident from the simulator over HTTPS (the reads SOAR's REST API answers)
    assert "/incidents/{0}?handle_format=names".format(INCIDENT_ID) in soar.paths("GET")


def test_send_email_legacy(app, publisher, receiver):
    correlation_id = publisher.invoke("send_email", {
        "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": "deployed legacy",
        "mail_body_text": "Plain legacy text"})
    results = final_reply(publisher, correlation_id)["results"]
    assert results["success"] is True, results["reason"]
    assert results["content"]["success"] is True
    [mail] = mails_with(receiver, "deployed legacy")
    assert mail.message.get_content().strip() == "Plain legacy text"


def test_failing_send_has_its_reason_in_the_final_reply(app, publisher, receiver):
    correlation_id = publisher.invoke("send_email2", {
        "mail_to": "analyst@example.com", "mail_incident_id": INCIDENT_ID, "mail_subject": "deployed failure",
        "mail_template_label": "no_such_label"})
    reply = final_reply(publisher, correlation_id)
    assert reply["complete"] is True
    assert reply["results"]["success"] is False
    assert "no_such_label" in reply["results"]["reason"]
    assert not mails_with(receiver, "deployed failure")


def test_bad_input_ends_with_an_error_reply(app, publisher):
    # a missing mail_to stops the function with an exception: resilient-circuits answers with an error status
    correlation_id = publisher.invoke("send_email2", {"mail_incident_id": INCIDENT_ID, "mail_body": "no recipient"})
    reply = final_reply(publisher, correlation_id)
    assert reply["message_type"] == 1 and "mail_to" in reply["message"]


def test_each_replica_has_its_own_home_lock_and_log(app):
    # the process runs from its own folder: its lock file and its log are there, not in the user's HOME
    assert os.path.exists(os.path.join(app.folder, "circuits.lock"))
    assert "Subscribed to message destination actions." in app.output()
    assert os.path.exists(os.path.join(app.folder, "app.log"))
