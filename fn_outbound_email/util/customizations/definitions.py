# -*- coding: utf-8 -*-
"""What fn_outbound_email ships to SOAR: functions, inputs, message destination, data table, incident field,
the "Save Outbound Email Results" script and the example playbooks (SPEC section 6).

Plain data only; build.py turns it into export.res. Script code is in scripts/*.py, named here by file.

Objects IBM's original app has are named here as `Known`: their uuids, labels, types, flags and select values
come from original_identities.json (identities.py), so that our export.res replaces the original's objects in
place. Only what the original's export does not hold (tooltips, placeholders, descriptions) is written here.
Objects of ours alone are full `Input`s and get stable uuids of their own.
"""

from dataclasses import dataclass
from typing import Optional, Tuple, Union

MESSAGE_DESTINATION = "email_outbound"
TEMPLATE_SELECT = "mail_template_select"   # the start-up component fills its choices from app.config


@dataclass(frozen=True)
class Known:
    """A field of the original app (function input, table column, incident field or playbook input)."""
    name: str
    tooltip: str = ""
    placeholder: str = ""


@dataclass(frozen=True)
class Input:
    """A field of ours alone: function input, incident field, activity field or playbook activation-form input."""
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
class Separator:
    """A line between groups of a playbook's activation form (an html view item)."""
    content: str = "<hr/>"


SEPARATOR = Separator()


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    inputs: Tuple[str, ...]            # function input names, in dialog order (the original's, then ours)


@dataclass(frozen=True)
class Script:
    name: str                          # display name; the original's scripts keep theirs
    description: str
    object_type: str
    files: Tuple[str, ...]             # scripts/<file>, joined in this order


@dataclass(frozen=True)
class Playbook:
    name: str                          # API name; display name and identities from original_identities.json
    description: str
    object_type: str                   # incident, task or a data table
    function: str
    inputs: Tuple[Union[Known, Input, Separator], ...]   # activation form in view order: the original's, in its
    #                                                       order, with inputs of ours in between
    pre_processing: Tuple[str, ...]    # scripts/<file>, joined in this order
    result_name: str
    post_script: Script
    post_script_is_local: bool = False


# every __function field, shared by both functions (SOAR keeps one definition per input name). The original marks
# only mail_importance required; mail_to and mail_incident_id are checked when the function runs.
FUNCTION_INPUTS = (
    Known("mail_from", "Sender address. Empty: from_email_address of app.config, else smtp_user when it is an address"),
    Known("mail_incident_id", "Id of the incident the mail is about (required)"),
    Known("mail_to", "Recipient addresses, separated by commas or semicolons (required)"),
    Known("mail_cc", "Cc addresses, separated by commas or semicolons"),
    Known("mail_bcc", "Bcc addresses: they receive the mail but appear in no header"),
    Known("mail_subject", "Subject line (send_email requires it)"),
    Known("mail_body_text", "send_email: body already rendered, sent as plain text when no template applies"),
    Known("mail_body_html", "send_email: Jinja template rendered over the incident; overrides template_file of "
                            "app.config"),
    Known("mail_attachments", "'*' for every incident and task attachment, or attachment names separated by commas"),
    Known("mail_body", "Body sent as given, or appended to the rendered template when mail_merge_body is true"),
    Known("mail_inline_template", "Jinja template rendered over the incident (instead of mail_template_label)",
          placeholder="jinja formatted document"),
    Known("mail_template_label", "Label of a template in [fn_outbound_email:templates] of app.config",
          placeholder="template label"),
    Known("mail_message_id", "Message-ID header, id@host; generated when empty", placeholder="unique-id@example.com"),
    Known("mail_in_reply_to", "Message-ID this mail answers: sets In-Reply-To and References",
          placeholder="original-id@example.com"),
    Known("mail_importance", "Importance and X-Priority headers (high 1, normal 3, low 5)"),
    Known("mail_merge_body", "true: append mail_body to the rendered template (e.g. to quote the message replied to)"),
    Known("mail_encryption_recipients",
          "PEM certificates of the recipients; given: the mail is S/MIME encrypted to them",
          placeholder="-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----"),
)

SEND_EMAIL = Function(
    "send_email",
    "Legacy (v1 inputs): send a mail about an incident, its body rendered from mail_body_html or the "
    "template_file of app.config, or mail_body_text as plain text, with incident and task attachments.",
    ("mail_from", "mail_incident_id", "mail_to", "mail_cc", "mail_bcc", "mail_subject", "mail_body_text",
     "mail_body_html", "mail_attachments"))

SEND_EMAIL2 = Function(
    "send_email2",
    "Send a plain text or HTML mail about an incident or task: body as given or rendered from a template "
    "(app.config label or inline) over the incident's data, Message-ID / In-Reply-To / Importance headers, "
    "incident and task attachments, S/MIME signing and encryption.",
    ("mail_from", "mail_incident_id", "mail_to", "mail_cc", "mail_bcc", "mail_subject", "mail_body",
     "mail_attachments", "mail_inline_template", "mail_template_label", "mail_message_id", "mail_in_reply_to",
     "mail_importance", "mail_merge_body", "mail_encryption_recipients"))

FUNCTIONS = (SEND_EMAIL, SEND_EMAIL2)

EMAIL_MESSAGE_ID_FIELD = Known("email_message_id", "Message-ID of the inbound mail this incident was created from")

# ours alone: an activity field of the same name as the playbooks' template select, so that rules of an
# administrator's own can offer the template choice too; the app keeps its values in step with app.config at start-up
ACTIVITY_TEMPLATE_SELECT = Input(TEMPLATE_SELECT, "select", "Template",
                                 "A template of [fn_outbound_email:templates] in app.config (the app lists them at "
                                 "start-up)", blank_option=True)

DATATABLE_NAME = "email_conversations"
DATATABLE_COLUMNS = (      # in the original's order
    Known("date_sent"),
    Known("status", "success, or failure with the reason"),
    Known("source", "inbound or outbound"),
    Known("inbound_id", "Id of the inbound email"),
    Known("from"),
    Known("recipients", "To, Cc and Bcc"),
    Known("subject"),
    Known("body"),
    Known("attachments"),
    Known("importance", "high, normal or low"),
    Known("message_id"),
    Known("in_reply_to"),
)

SAVE_RESULTS = Script(
    "Save Outbound Email Results",
    "Adds a row to the Email Conversations table from the results of the playbook's Outbound Email function "
    "(playbook.functions.results.outbound_email_results).",
    "incident", ("save_outbound_email_results.py",))

PROCESS_RESULTS = Script(
    "Process Results",
    "Writes an incident note saying whether the mail was sent, to whom, and its text.",
    "incident", ("process_send_email_results.py",))

# activation-form inputs of the playbooks: the original's (labels, types and flags are the original's)...
PB_TO = Known("mail_to", "Recipient addresses, separated by commas")
PB_FROM = Known("mail_from", "Sender address. Empty: from_email_address of app.config")
PB_CC = Known("mail_cc", "Cc addresses, separated by commas")
PB_ATTACHMENTS = Known("mail_attachments",
                       "'*' for all incident and task attachments, or attachment names separated by commas")
PB_SUBJECT = Known("mail_subject", "Empty: [incident id] incident name")
PB_BODY = Known("mail_body", "Sent as written. Empty: the chosen template, else the playbook's own summary")
PB_IMPORTANCE = Known("mail_importance", "Importance and X-Priority headers")
PB_TEMPLATE = Known(TEMPLATE_SELECT, "A template of [fn_outbound_email:templates] in app.config (the app lists "
                                     "them at start-up)")
PB_MESSAGE_ID = Known("mail_message_id",
                      "Yes: the playbook gives the mail its Message-ID (the app generates one otherwise)")
PB_IN_REPLY_TO = Known("mail_in_reply_to", "Yes: In-Reply-To is the incident's Email Message-ID, threading the "
                                           "mail in the sender's mailbox")
PB_ENCRYPTION = Known("mail_encryption_key", "PEM certificates of the recipients; given: the mail is S/MIME "
                                             "encrypted")
# ... and ours, where the original's form has no such input
PB_EXTRA_TO = Input("mail_to", "text", "To", "Empty: the sender of the message replied to")
PB_EXTRA_SUBJECT = Input("mail_subject", "text", "Subject", "Empty: [incident id] incident name Task: task name")
PB_EXTRA_BODY = Input("mail_body", "textarea", "Body",
                      "Sent as written. Empty: the chosen template, else the playbook's own task notice")
PB_EXTRA_MERGE = Input("mail_merge_body", "boolean", "Add the body after the template",
                       "Yes: the template's text comes first, then the body")
PB_EXTRA_ENCRYPTION = Input("mail_encryption_key", "textarea", "Encryption Key",
                            "PEM certificates of the recipients; given: the mail is S/MIME encrypted")

RESULT_NAME = "outbound_email_results"

PLAYBOOKS = (
    Playbook(
        "pb_example_send_incident_email_html",
        "Send an HTML summary of the incident (details, description, link) with send_email, then record it in "
        "the Email Conversations table.",
        "incident", "send_email", (PB_FROM, PB_TO, PB_CC, PB_ATTACHMENTS),
        ("incident_summary_template.py", "pre_send_incident_email_html.py"), RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "example_send_incident_email_text",
        "Send a plain-text summary of the incident with send_email and note the outcome on the incident. "
        "The text goes through mail_body_html, so a template_file set in app.config does not replace it.",
        "incident", "send_email", (PB_TO, PB_FROM, PB_CC, PB_ATTACHMENTS),
        ("script_helpers.py", "pre_send_incident_email_text.py"), "send_email_results", PROCESS_RESULTS,
        post_script_is_local=True),
    Playbook(
        "send_incident_email_html2_pb_example",
        "Send a mail about the incident with send_email2: the body written here, a template chosen from "
        "app.config, or the built-in incident summary; optional Message-ID, reply threading, importance and "
        "encryption. The mail is recorded in the Email Conversations table.",
        "incident", "send_email2",
        (PB_TO, PB_FROM, PB_CC, PB_SUBJECT, PB_BODY, PB_ATTACHMENTS, SEPARATOR, PB_IMPORTANCE, PB_TEMPLATE,
         PB_EXTRA_MERGE, PB_MESSAGE_ID, PB_IN_REPLY_TO, PB_ENCRYPTION),
        ("script_helpers.py", "incident_summary_template.py", "pre_send_incident_email_html2.py"),
        RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "example_send_task_email_html",
        "Send an HTML notice about the task (name, instructions, link) with send_email, then record it in the "
        "Email Conversations table.",
        "task", "send_email", (PB_TO, PB_FROM, PB_CC, PB_ATTACHMENTS),
        ("script_helpers.py", "task_notice_template.py", "pre_send_task_email_html.py"), RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "example_send_task_email_html2",
        "Send a mail about the task with send_email2: the body written here, a template chosen from app.config, "
        "or the built-in task notice; optional Message-ID, reply threading, importance and encryption. The mail "
        "is recorded in the Email Conversations table.",
        "task", "send_email2",
        (PB_TO, PB_FROM, PB_CC, PB_EXTRA_SUBJECT, PB_EXTRA_BODY, PB_ATTACHMENTS, SEPARATOR, PB_IMPORTANCE,
         PB_TEMPLATE, PB_EXTRA_MERGE, PB_MESSAGE_ID, PB_IN_REPLY_TO, PB_ENCRYPTION),
        ("script_helpers.py", "task_notice_template.py", "pre_send_task_email_html2.py"),
        RESULT_NAME, SAVE_RESULTS),
    Playbook(
        "outbound_email_reply_to_message",
        "Answer a message of the Email Conversations table: to its sender (unless given), subject 'Re: ...', "
        "In-Reply-To its Message-ID, optionally quoting it and using a template. The reply gets its own row.",
        DATATABLE_NAME, "send_email2",
        (PB_FROM, PB_EXTRA_TO, PB_CC, Known("mail_body", "Your answer"),
         Known("mail_merge_body", "Yes: the message replied to follows the reply, quoted as text"),
         PB_ATTACHMENTS, SEPARATOR, PB_TEMPLATE,
         Known("mail_message_id", "Yes: the playbook gives the reply its Message-ID (the app generates one "
                                  "otherwise)"),
         PB_IMPORTANCE, PB_EXTRA_ENCRYPTION),
        ("script_helpers.py", "pre_reply_to_message.py"), RESULT_NAME, SAVE_RESULTS),
)
