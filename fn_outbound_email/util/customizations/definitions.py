# -*- coding: utf-8 -*-
"""What fn_outbound_email ships to SOAR: functions, inputs, message destination, data table, incident field,
the "Save Outbound Email Results" script and the example playbooks (SPEC section 6).

Plain data only; build.py turns it into export.res. Script code is in scripts/*.py, named here by file.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

MESSAGE_DESTINATION = "email_outbound"
TEMPLATE_SELECT = "mail_template_select"   # the start-up component fills its choices from app.config


@dataclass(frozen=True)
class Input:
    """A field: function input, table column, incident field or playbook activation-form input."""
    name: str
    input_type: str
    text: str
    tooltip: str = ""
    required: bool = False
    choices: Tuple[str, ...] = ()
    default: Optional[str] = None      # label of the default choice
    blank_option: bool = False
    rich_text: bool = False
    placeholder: str = ""


@dataclass(frozen=True)
class Function:
    name: str
    display_name: str
    description: str
    inputs: Tuple[str, ...]            # function input names, in dialog order


@dataclass(frozen=True)
class Script:
    name: str
    programmatic_name: str
    description: str
    object_type: str
    files: Tuple[str, ...]             # scripts/<file>, joined in this order


@dataclass(frozen=True)
class Playbook:
    name: str                          # API name
    display_name: str
    description: str
    object_type: str                   # incident, task or a data table
    function: str
    inputs: Tuple[Input, ...]          # activation form, in order
    pre_processing: Tuple[str, ...]    # scripts/<file>, joined in this order
    result_name: str
    post_script: Script
    post_script_is_local: bool = False


IMPORTANCE_CHOICES = ("high", "normal", "low")

# every __function field, shared by both functions (SOAR keeps one definition per input name)
FUNCTION_INPUTS = (
    Input("mail_from", "text", "mail_from",
          "Sender address. Empty: from_email_address of app.config, else smtp_user when it is an address"),
    Input("mail_incident_id", "number", "mail_incident_id", "Id of the incident the mail is about", required=True),
    Input("mail_to", "text", "mail_to", "Recipient addresses, separated by commas or semicolons", required=True),
    Input("mail_cc", "text", "mail_cc", "Cc addresses, separated by commas or semicolons"),
    Input("mail_bcc", "text", "mail_bcc", "Bcc addresses: they receive the mail but appear in no header"),
    Input("mail_subject", "text", "mail_subject", "Subject line (send_email requires it)"),
    Input("mail_body_text", "text", "mail_body_text",
          "send_email: body already rendered, sent as plain text when no template applies"),
    Input("mail_body_html", "text", "mail_body_html",
          "send_email: Jinja template rendered over the incident; overrides template_file of app.config"),
    Input("mail_attachments", "text", "mail_attachments",
          "'*' for every incident and task attachment, or attachment names separated by commas"),
    Input("mail_body", "text", "mail_body",
          "Body sent as given, or appended to the rendered template when mail_merge_body is true"),
    Input("mail_inline_template", "text", "mail_inline_template",
          "Jinja template rendered over the incident (instead of mail_template_label)",
          placeholder="jinja formatted document"),
    Input("mail_template_label", "text", "mail_template_label",
          "Label of a template in [fn_outbound_email:templates] of app.config", placeholder="template label"),
    Input("mail_message_id", "text", "mail_message_id",
          "Message-ID header, id@host; generated when empty", placeholder="unique-id@example.com"),
    Input("mail_in_reply_to", "text", "mail_in_reply_to",
          "Message-ID this mail answers: sets In-Reply-To and References", placeholder="original-id@example.com"),
    Input("mail_importance", "select", "mail_importance",
          "Importance and X-Priority headers (high 1, normal 3, low 5)", required=True,
          choices=IMPORTANCE_CHOICES, default="normal"),
    Input("mail_merge_body", "boolean", "mail_merge_body",
          "true: append mail_body to the rendered template (e.g. to quote the message replied to)"),
    Input("mail_encryption_recipients", "text", "mail_encryption_recipients",
          "PEM certificates of the recipients; given: the mail is S/MIME encrypted to them",
          placeholder="-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----"),
)

SEND_EMAIL = Function(
    "send_email", "Outbound Email: Send Email",
    "Legacy (v1 inputs): send a mail about an incident, its body rendered from mail_body_html or the "
    "template_file of app.config, or mail_body_text as plain text, with incident and task attachments.",
    ("mail_from", "mail_incident_id", "mail_to", "mail_cc", "mail_bcc", "mail_subject", "mail_body_text",
     "mail_body_html", "mail_attachments"))

SEND_EMAIL2 = Function(
    "send_email2", "Outbound Email: Send Email 2",
    "Send a plain text or HTML mail about an incident or task: body as given or rendered from a template "
    "(app.config label or inline) over the incident's data, Message-ID / In-Reply-To / Importance headers, "
    "incident and task attachments, S/MIME signing and encryption.",
    ("mail_from", "mail_incident_id", "mail_to", "mail_cc", "mail_bcc", "mail_subject", "mail_body",
     "mail_attachments", "mail_inline_template", "mail_template_label", "mail_message_id", "mail_in_reply_to",
     "mail_importance", "mail_merge_body", "mail_encryption_recipients"))

FUNCTIONS = (SEND_EMAIL, SEND_EMAIL2)

EMAIL_MESSAGE_ID_FIELD = Input("email_message_id", "text", "Email Message-ID",
                               "Message-ID of the inbound mail this incident was created from")

# an activity field of the same name as the playbooks' template select: rules of an administrator's own can
# offer the template choice too, and the app keeps its values in step with app.config at start-up
ACTIVITY_TEMPLATE_SELECT = Input(TEMPLATE_SELECT, "select", "Template",
                                 "A template of [fn_outbound_email:templates] in app.config (the app lists them at "
                                 "start-up)", blank_option=True)

DATATABLE_NAME = "email_conversations"
DATATABLE_DISPLAY_NAME = "Email Conversations"
DATATABLE_COLUMNS = (
    Input("date_sent", "datetimepicker", "Date Sent"),
    Input("status", "text", "Status", "success, or failure with the reason"),
    Input("source", "text", "Source", "inbound or outbound"),
    Input("inbound_id", "number", "Inbound Id", "Id of the inbound email"),
    Input("from", "text", "From"),
    Input("recipients", "textarea", "Recipients", "To, Cc and Bcc", rich_text=True),
    Input("subject", "text", "Subject"),
    Input("body", "textarea", "Body", rich_text=True),
    Input("attachments", "text", "Attachments"),
    Input("importance", "text", "Importance", "high, normal or low"),
    Input("message_id", "text", "Message Id"),
    Input("in_reply_to", "text", "In Reply To"),
)

SAVE_RESULTS = Script(
    "Save Outbound Email Results", "save_outbound_email_results",
    "Adds a row to the Email Conversations table from the results of the playbook's Outbound Email function "
    "(playbook.functions.results.outbound_email_results).",
    "incident", ("save_outbound_email_results.py",))

PROCESS_RESULTS = Script(
    "Process Results", "example_send_incident_email_text_process_results",
    "Writes an incident note saying whether the mail was sent, to whom, and its text.",
    "incident", ("process_send_email_results.py",))

# activation-form inputs of the playbooks
PB_TO = Input("mail_to", "text", "To", "Recipient addresses, separated by commas", required=True)
PB_REPLY_TO = Input("mail_to", "text", "To", "Empty: the sender of the message replied to")
PB_FROM = Input("mail_from", "text", "From", "Sender address. Empty: from_email_address of app.config")
PB_CC = Input("mail_cc", "text", "Cc", "Cc addresses, separated by commas")
PB_ATTACHMENTS = Input("mail_attachments", "text", "Attachments",
                       "'*' for all incident and task attachments, or attachment names separated by commas")
PB_SUBJECT = Input("mail_subject", "text", "Subject", "Empty: [incident id] incident name")
PB_BODY = Input("mail_body", "textarea", "Body",
                "Sent as written. Empty: the chosen template, else the playbook's own incident summary")
PB_REPLY = Input("mail_body", "textarea", "Reply", "Your answer")
PB_IMPORTANCE = Input("mail_importance", "select", "Importance", "Importance and X-Priority headers",
                      choices=IMPORTANCE_CHOICES, default="normal", blank_option=True)
PB_TEMPLATE = Input(TEMPLATE_SELECT, "select", "Template",
                    "A template of [fn_outbound_email:templates] in app.config (the app lists them at start-up)",
                    blank_option=True)
PB_MERGE = Input("mail_merge_body", "boolean", "Add the body after the template",
                 "Yes: the template's text comes first, then the body")
PB_QUOTE = Input("mail_merge_body", "boolean", "Quote the original message",
                 "Yes: the message replied to follows the reply")
PB_MESSAGE_ID = Input("mail_message_id", "boolean", "Set a Message-ID",
                      "Yes: the playbook gives the mail its Message-ID (the app generates one otherwise)")
PB_IN_REPLY_TO = Input("mail_in_reply_to", "boolean", "Reply to the incident's email",
                       "Yes: In-Reply-To is the incident's Email Message-ID, threading the mail in the sender's "
                       "mailbox")
PB_ENCRYPTION = Input("mail_encryption_key", "textarea", "Encryption certificates",
                      "PEM certificates of the recipients; given: the mail is S/MIME encrypted")

RESULT_NAME = "outbound_email_results"

PLAYBOOKS = (
    Playbook(
        "pb_example_send_incident_email_html", "Send Incident Email HTML (PB)",
        "Send an HTML summary of the incident (details, description, link) with send_email, then record it in "
        "the Email Conversations table.",
        "incident", "send_email", (PB_TO, PB_CC, PB_ATTACHMENTS),
        ("incident_summary_template.py", "pre_send_incident_email_html.py"), RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "example_send_incident_email_text", "Send Incident Email Text (PB)",
        "Send a plain-text summary of the incident with send_email and note the outcome on the incident. "
        "A template_file set in app.config takes precedence over the text (send_email's v1 rules).",
        "incident", "send_email", (PB_TO, PB_CC, PB_ATTACHMENTS),
        ("pre_send_incident_email_text.py",), "send_email_results", PROCESS_RESULTS, post_script_is_local=True),
    Playbook(
        "send_incident_email_html2_pb_example", "Send Incident Email HTML2 (PB) Example",
        "Send a mail about the incident with send_email2: the body written here, a template chosen from "
        "app.config, or the built-in incident summary; optional Message-ID, reply threading, importance and "
        "encryption. The mail is recorded in the Email Conversations table.",
        "incident", "send_email2",
        (PB_TO, PB_FROM, PB_CC, PB_SUBJECT, PB_ATTACHMENTS, PB_IMPORTANCE, PB_TEMPLATE, PB_BODY, PB_MERGE,
         PB_MESSAGE_ID, PB_IN_REPLY_TO, PB_ENCRYPTION),
        ("script_helpers.py", "incident_summary_template.py", "pre_send_incident_email_html2.py"),
        RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "example_send_task_email_html", "Send Task Email HTML (PB)",
        "Send an HTML notice about the task (name, instructions, link) with send_email, then record it in the "
        "Email Conversations table.",
        "task", "send_email", (PB_TO, PB_CC, PB_ATTACHMENTS),
        ("script_helpers.py", "task_notice_template.py", "pre_send_task_email_html.py"), RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "example_send_task_email_html2", "Send Task Email HTML2 (PB) Example",
        "Send a mail about the task with send_email2: the body written here, a template chosen from app.config, "
        "or the built-in task notice; optional Message-ID, importance and encryption. The mail is recorded in "
        "the Email Conversations table.",
        "task", "send_email2",
        (PB_TO, PB_FROM, PB_CC, PB_SUBJECT, PB_ATTACHMENTS, PB_IMPORTANCE, PB_TEMPLATE, PB_BODY, PB_MERGE,
         PB_MESSAGE_ID, PB_ENCRYPTION),
        ("script_helpers.py", "task_notice_template.py", "pre_send_task_email_html2.py"),
        RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "outbound_email_reply_to_message", "Outbound Email Reply to Message (PB)",
        "Answer a message of the Email Conversations table: to its sender (unless given), subject 'Re: ...', "
        "In-Reply-To its Message-ID, optionally quoting it and using a template. The reply gets its own row.",
        DATATABLE_NAME, "send_email2",
        (PB_REPLY_TO, PB_CC, PB_REPLY, PB_QUOTE, PB_TEMPLATE, PB_ATTACHMENTS, PB_IMPORTANCE, PB_ENCRYPTION),
        ("script_helpers.py", "pre_reply_to_message.py"), RESULT_NAME, SAVE_RESULTS),
)
