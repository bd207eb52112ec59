# Pre-processing script of "Send Task Email HTML2 (PB) Example" (function send_email2, object task).
# Body: the Body input as written; or the chosen template (followed by the Body when asked); else the task notice.
inputs.mail_to = playbook.inputs.mail_to
inputs.mail_from = playbook.inputs.mail_from
inputs.mail_cc = playbook.inputs.mail_cc
inputs.mail_attachments = playbook.inputs.mail_attachments
inputs.mail_incident_id = incident.id
inputs.mail_subject = playbook.inputs.mail_subject or u"[{0}] {1} Task: {2}".format(incident.id, incident.name,
                                                                                    task.name)
inputs.mail_importance = playbook.inputs.mail_importance or "normal"
inputs.mail_encryption_recipients = text_of(playbook.inputs.mail_encryption_key)
if playbook.inputs.mail_message_id:
    inputs.mail_message_id = new_message_id(incident.id, task.id)
if playbook.inputs.mail_in_reply_to and incident.properties.email_message_id:
    inputs.mail_in_reply_to = incident.properties.email_message_id

set_body(inputs, text_of(playbook.inputs.mail_body), playbook.inputs.mail_template_select,
         playbook.inputs.mail_merge_body, task_notice(incident.id, task))
