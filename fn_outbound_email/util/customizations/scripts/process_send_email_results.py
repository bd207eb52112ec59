# Local script "Process Results" of "Send Incident Email Text (PB) Example" (object incident): notes on the incident
# whether send_email (result name send_email_results) sent the mail, to whom, and its text.
results = playbook.functions.results.send_email_results
content = (results or {}).get("content") or {}
sender, to, cc, bcc, subject = (list(content.get("inputs") or []) + [u""] * 5)[:5]
if results and results.get("success") and content.get("success", True):
    note = u"Email sent\nFrom: {0}\nTo: {1}\nCc: {2}\nBcc: {3}\nSubject: {4}\n\n{5}".format(
        sender, to, cc, bcc, subject, content.get("text") or u"")
else:
    reason = (results or {}).get("reason") or content.get("message") or u"no result"
    note = u"Email NOT sent: {0}\nFrom: {1}\nTo: {2}".format(reason, sender, to)
incident.addNote(note)
