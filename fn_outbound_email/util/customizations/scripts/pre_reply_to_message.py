# Pre-processing script of "Outbound Email Reply to Message (PB)" (function send_email2, object: a row of the
# email_conversations table). Answers the row's message: to its sender, "Re:" subject, In-Reply-To its Message-ID.
import time

subject = row["subject"] or u""
inputs.mail_from = playbook.inputs.mail_from
inputs.mail_to = playbook.inputs.mail_to or row["from"]
inputs.mail_cc = playbook.inputs.mail_cc
inputs.mail_attachments = playbook.inputs.mail_attachments
inputs.mail_incident_id = incident.id
inputs.mail_subject = subject if subject.lower().startswith("re:") else u"Re: {0}".format(subject)
inputs.mail_importance = playbook.inputs.mail_importance or "normal"
inputs.mail_encryption_recipients = text_of(playbook.inputs.mail_encryption_key)
if playbook.inputs.mail_message_id:
    inputs.mail_message_id = new_message_id(incident.id, row["message_id"])
if row["message_id"]:
    inputs.mail_in_reply_to = row["message_id"]

reply = text_of(playbook.inputs.mail_body)
if playbook.inputs.mail_merge_body:
    # The answer, then the original message as a quotation. The original is an inbound mail's HTML, written by
    # anyone: it is quoted as escaped text (its words and line breaks, none of its markup), so no script, link,
    # form or tracking image of it reaches the reply. Escaping here rather than passing it through the app's
    # safe_html filter (an inline template) works in every case: send_email2 takes either an inline template or a
    # template label, and the analyst may have chosen a template.
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row["date_sent"] / 1000.0)) if row["date_sent"] else None
    header = u"On {0}, {1} wrote:".format(when, row["from"]) if when else u"{0} wrote:".format(row["from"])
    reply = (u'{0}<br>\n<br>\n{1}<br>\n<blockquote style="margin: 0 0 0 8px; border-left: 2px solid #9dc3e6; '
             u'padding-left: 8px">{2}</blockquote>').format(html_text(reply), html_text(header),
                                                           html_text(html_to_text(row["body"])))
set_body(inputs, reply, playbook.inputs.mail_template_select, True)
