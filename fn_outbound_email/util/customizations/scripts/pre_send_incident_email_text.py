# Pre-processing script of "Send Incident Email Text (PB)" (function send_email, object incident).
# The body is plain text written here; send_email sends mail_body_text as is (unless app.config sets template_file).
import re


def plain(html):
    """Rich text of SOAR as plain text: tags dropped, common entities decoded."""
    text = re.sub(r"<br\s*/?>|</p>|</div>", "\n", html or "", flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    for entity, char in (("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"),
                         ("&amp;", "&")):
        text = text.replace(entity, char)
    return text.strip()


inputs.mail_to = playbook.inputs.mail_to
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
    plain(incident.description) or u"-",
])
