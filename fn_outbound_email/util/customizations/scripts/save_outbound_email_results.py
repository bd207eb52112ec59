# Global script "Save Outbound Email Results" (object incident): records the mail sent by the playbook's
# Outbound Email function (result name outbound_email_results) as a row of the email_conversations table.
# Works with the results of send_email2 and of the legacy send_email.
import time


def escaped(text):
    """Plain text for a rich-text cell."""
    return u"{0}".format(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


results = playbook.functions.results.outbound_email_results
if results is None:
    incident.addNote(u"Save Outbound Email Results: the playbook has no function result named outbound_email_results")
else:
    fn_inputs = results.get("inputs") or {}
    content = results.get("content") or {}
    sent = bool(results.get("success")) and content.get("success", True) is not False
    refused = (content.get("recipients") or {}).get("refused") or {}
    if not sent:
        status = u"failure: {0}".format(results.get("reason") or content.get("message") or "unknown reason")
    elif refused:
        status = u"success; refused: {0}".format(u", ".join(sorted(refused)))
    else:
        status = u"success"

    recipients = [(u"To", fn_inputs.get("mail_to")), (u"Cc", fn_inputs.get("mail_cc")),
                  (u"Bcc", fn_inputs.get("mail_bcc"))]
    row = incident.addRow("email_conversations")
    row["date_sent"] = int(time.time() * 1000)
    row["status"] = status
    row["source"] = u"outbound"
    row["from"] = content.get("mail_from") or fn_inputs.get("mail_from")
    row["recipients"] = u"<br>".join(u"{0}: {1}".format(kind, escaped(value)) for kind, value in recipients if value)
    row["subject"] = fn_inputs.get("mail_subject")
    row["body"] = content.get("mail_body") if "mail_body" in content else content.get("text")
    row["attachments"] = u", ".join((content.get("attachments") or {}).get("sent") or []) or \
        fn_inputs.get("mail_attachments")
    row["importance"] = fn_inputs.get("mail_importance")
    row["message_id"] = content.get("message_id") or fn_inputs.get("mail_message_id")
    row["in_reply_to"] = fn_inputs.get("mail_in_reply_to")
