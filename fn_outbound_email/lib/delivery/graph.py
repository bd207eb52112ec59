# -*- coding: utf-8 -*-
"""Sending through Microsoft Graph: ``POST {graph_url}/v1.0/users/{mailbox}/sendMail`` with the MIME message.

For Microsoft 365 tenants where SMTP AUTH is off. The body is our composed message (S/MIME, attachments,
Message-ID, In-Reply-To kept) base64-encoded, ``Content-Type: text/plain``, as Graph takes MIME; Graph answers
202. The token is app-only (client credentials with a secret or certificate, scope ``{graph_url}/.default``)
and needs the application permission Mail.Send; an application access policy limits it to the mailboxes it
may send as.

Size: a Graph request carries at most 4 MB (GRAPH_MAX_REQUEST_BYTES), so a message whose base64 form is larger
is refused before anything is sent, naming both sizes. Graph's upload sessions (3 MB to 150 MB) attach *files*
to a draft: they need Mail.ReadWrite, more than sending needs, and would rebuild the message from its parts,
which an S/MIME signature or encryption over our MIME does not survive; so they are not used.

Selftest: sendMail with a JSON message that has no recipient. Graph checks the token and the app's
permission and access policy for the mailbox first (401, 403), then refuses the message itself (400
ErrorInvalidRecipients): a 400 proves Mail.Send for that mailbox, and nothing can be sent. The other
candidates need more than Mail.Send: reading mailboxSettings needs MailboxSettings.Read, and a draft created
and deleted needs Mail.ReadWrite.
"""

import base64
import json
from urllib.parse import quote

from fn_outbound_email.lib.delivery.http_api import HttpMailTransport, size_refusal

GRAPH_MAX_REQUEST_BYTES = 4 * 1024 * 1024
PERMISSION_HINT = ("the app registration needs the Microsoft Graph application permission Mail.Send with admin "
                   "consent, and an application access policy (New-ApplicationAccessPolicy -AccessRight "
                   "RestrictAccess) that limits the app must include the mailbox {0} (its group); changes take up "
                   "to an hour to apply")


class GraphTransport(HttpMailTransport):
    provider = "Microsoft Graph"
    kind = "graph"

    def _send_url(self):
        return "{0}/v1.0/users/{1}/sendMail".format(self._settings.graph_url, quote(self.mailbox, safe="@"))

    def _check_size(self, message):
        encoded = 4 * -(-len(message) // 3)
        if encoded > GRAPH_MAX_REQUEST_BYTES:
            raise size_refusal(self.provider, len(message), GRAPH_MAX_REQUEST_BYTES,
                               "in one sendMail request", body_size=encoded)

    def _send_request(self, message):
        return "POST", self._send_url(), {"Content-Type": "text/plain"}, base64.b64encode(message)

    def _probe_request(self):
        body = {"message": {"subject": "fn_outbound_email selftest (never sent: no recipient)"},
                "saveToSentItems": False}
        return "POST", self._send_url(), {"Content-Type": "application/json"}, json.dumps(body).encode("ascii")

    def _probe_passed(self, answer):
        return answer.status == 400 or 200 <= answer.status < 300

    def _refusal_hint(self, answer, size):
        if answer.status == 403:
            return PERMISSION_HINT.format(self.mailbox)
        if answer.status == 401:
            return "a new token was refused too: check that token_url's tenant is the mailbox's and graph_url the " \
                   "cloud of that tenant"
        if answer.status == 404:
            return "Graph knows no mailbox {0}: check oauth2_subject (a user with an Exchange Online " \
                   "mailbox)".format(self.mailbox)
        if answer.status == 413:
            return "the message of {0} bytes ({1} bytes base64-encoded) is more than Graph accepts (its documented " \
                   "limit: {2} bytes a request)".format(size, 4 * -(-size // 3), GRAPH_MAX_REQUEST_BYTES)
        return ""
