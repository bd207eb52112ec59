# -*- coding: utf-8 -*-
"""Generate the SOAR customizations required for fn_outbound_email (as resilient-sdk codegen lays it out).

Written with data/export.res by `python -m fn_outbound_email.util.customizations.build`:
edit util/customizations, not this file.
"""

import base64
import io
import os

try:
    from resilient import ImportDefinition
except ImportError:
    # resilient-circuits < v35.0.195
    from resilient_circuits.util import ImportDefinition

RES_FILE = "data/export.res"


def codegen_reload_data():
    """Parameters required reload codegen for the fn_outbound_email package"""
    return {
        "package": u"fn_outbound_email",
        "message_destinations": [
            u"email_outbound",
        ],
        "functions": [
            u"send_email",
            u"send_email2",
        ],
        "workflows": [],
        "actions": [],
        "incident_fields": [
            u"email_message_id",
        ],
        "incident_artifact_types": [],
        "incident_types": [],
        "datatables": [
            u"email_conversations",
        ],
        "automatic_tasks": [],
        "scripts": [
            u"Save Outbound Email Results",
        ],
        "playbooks": [
            u"example_send_incident_email_text",
            u"example_send_task_email_html",
            u"example_send_task_email_html2",
            u"outbound_email_reply_to_message",
            u"pb_example_send_incident_email_html",
            u"send_incident_email_html2_pb_example",
        ],
    }


def customization_data(client=None):
    """
    Returns a Generator of ImportDefinitions (Customizations).
    Install them using `resilient-circuits customize`

    IBM SOAR Platform Version: 51.0.0.0.0

    Contents:
    - Message Destinations:
        - email_outbound
    - Functions:
        - send_email
        - send_email2
    - Playbooks:
        - example_send_incident_email_text
        - example_send_task_email_html
        - example_send_task_email_html2
        - outbound_email_reply_to_message
        - pb_example_send_incident_email_html
        - send_incident_email_html2_pb_example
    - Incident Fields:
        - email_message_id
    - Activity Fields:
        - mail_template_select
    - Data Tables:
        - email_conversations
    - Scripts:
        - Save Outbound Email Results
    """
    res_file = os.path.join(os.path.dirname(__file__), RES_FILE)
    if not os.path.isfile(res_file):
        raise FileNotFoundError("{0} not found".format(RES_FILE))

    with io.open(res_file, mode="rt", encoding="utf-8") as export:
        b64_data = base64.b64encode(export.read().encode("utf-8"))
        yield ImportDefinition(b64_data)
