# Pre-processing script of "Outbound Email Reply to Message (PB)" (function send_email2, object: a row of the
# email_conversations table). Answers the row's message: to its sender, "Re:" subject, In-Reply-To its Message-ID.
import time

subject = row["subject"] or u""
inputs.mail_to = playbook.inputs.mail_to or row["from"]
inputs.mail_cc = playbook.inputs.mail_cc
inputs.mail_attachments = playbook.inputs.mail_attachments
inputs.mail_incident_id = incident.id
inputs.mail_subject = subject if subject.lower().startswith("re:") else u"Re: {0}".format(subject)
inputs.mail_importance = playbook.inputs.mail_importance or "normal"
inputs.mail_encryption_recipients = text_of(playbook.inputs.mail_encryption_key)
if row["message_id"]:
    inputs.mail_in_reply_to = row["message_id"]

reply = text_of(playbook.inputs.mail_body)
if playbook.inputs.mail_merge_body:
    # HTML reply: the answer, then the original message (the table keeps it as HTML) as a quotation
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row["date_sent"] / 1000.0)) if row["date_sent"] else None
    header = u"On {0}, {1} wrote:".format(when, row["from"]) if when else u"{0} wrote:".format(row["from"])
    reply = (u'{0}<br>\n<br>\n{1}<br>\n<blockquote style="margin: 0 0 0 8px; border-left: 2px solid #9dc3e6; '
             u'padding-left: 8px">{2}</blockquote>').format(html_text(reply), html_text(header), row["body"] or u"")
set_body(inputs, reply, playbook.inputs.mail_template_select, True)
