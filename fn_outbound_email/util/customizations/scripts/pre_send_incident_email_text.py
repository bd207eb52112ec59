# Pre-processing script of "Send Incident Email Text (PB) Example" (function send_email, object incident).
# The body is plain text written here. send_email renders mail_body_html first, then app.config's template_file
# (which the generated section sets), and sends mail_body_text only when neither is given; so the text goes in
# through a one-line text template that prints it as data: the mail stays this text whatever template_file says.
inputs.mail_to = playbook.inputs.mail_to
inputs.mail_from = playbook.inputs.mail_from
inputs.mail_cc = playbook.inputs.mail_cc
inputs.mail_attachments = playbook.inputs.mail_attachments
inputs.mail_incident_id = incident.id
inputs.mail_subject = u"[{0}] {1}".format(incident.id, incident.name)
inputs.mail_body_text = u"\n".join([
    u"Incident {0}: {1}".format(incident.id, incident.name),
    u"Severity: {0}".format(incident.severity_code or "-"),
    u"Status: {0}".format({"A": "Active", "C": "Closed"}.get(incident.plan_status, incident.plan_status or "-")),
    u"",
    u"Description:",
    html_to_text(incident.description) or u"-",
])
inputs.mail_body_html = u"{{ mail.mail_body_text }}"
