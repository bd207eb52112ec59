# Pre-processing script of "Send Incident Email HTML (PB) Example" (function send_email, object incident).
# The app renders mail_body_html (a Jinja template) over the incident; the sender is From, else from_email_address.
inputs.mail_to = playbook.inputs.mail_to
inputs.mail_from = playbook.inputs.mail_from
inputs.mail_cc = playbook.inputs.mail_cc
inputs.mail_attachments = playbook.inputs.mail_attachments
inputs.mail_incident_id = incident.id
inputs.mail_subject = u"[{0}] {1}".format(incident.id, incident.name)
inputs.mail_body_html = INCIDENT_SUMMARY_TEMPLATE
