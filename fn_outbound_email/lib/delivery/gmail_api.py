# -*- coding: utf-8 -*-
"""Sending through the Gmail API: ``users/{mailbox}/messages/send`` with the raw message.

For Google Workspace: a service account acts for the mailbox through domain-wide delegation (the JWT bearer
grant of lib/auth/oauth2.py) with the scope ``https://www.googleapis.com/auth/gmail.send``. A message up to
GMAIL_JSON_MAX_BYTES goes as JSON ``{"raw": base64url}`` to ``/gmail/v1/...``; a larger one as the message
itself (``message/rfc822``) to the media upload endpoint ``/upload/gmail/v1/...?uploadType=media``, which
spares the base64 third. Gmail takes messages up to 35 MB (GMAIL_MAX_MESSAGE_BYTES); a larger one is refused
before anything is sent, naming both sizes.

Selftest: messages.send with a message that has no recipient. Google checks the token (401) and its scope
and delegation (403) first, then refuses the message itself (400 "Recipient address required"): a 400 proves
the mailbox may send with gmail.send, the only scope the app holds, and nothing can be sent. Reading the
mailbox's profile or creating a draft would need a wider scope (gmail.readonly, gmail.compose).
"""

import base64
import json
from urllib.parse import quote

from fn_outbound_email.lib.delivery.http_api import HttpMailTransport, size_refusal

GMAIL_MAX_MESSAGE_BYTES = 35 * 1024 * 1024
GMAIL_JSON_MAX_BYTES = 1024 * 1024
PERMISSION_HINT = ("in the Google Workspace Admin console, domain-wide delegation must allow the service account's "
                   "client ID the scope https://www.googleapis.com/auth/gmail.send, Gmail must be on for {0}, and "
                   "the From address must be {0} or one of its send-as aliases")


class GmailApiTransport(HttpMailTransport):
    provider = "the Gmail API"
    kind = "gmail_api"

    def _url(self, upload=False):
        return "{0}/{1}gmail/v1/users/{2}/messages/send{3}".format(
            self._settings.gmail_api_url, "upload/" if upload else "", quote(self.mailbox, safe="@"),
            "?uploadType=media" if upload else "")

    def _check_size(self, message):
        if len(message) > GMAIL_MAX_MESSAGE_BYTES:
            raise size_refusal(self.provider, len(message), GMAIL_MAX_MESSAGE_BYTES, "in one message")

    def _send_request(self, message):
        if len(message) > GMAIL_JSON_MAX_BYTES:
            return "POST", self._url(upload=True), {"Content-Type": "message/rfc822"}, bytes(message)
        return "POST", self._url(), {"Content-Type": "application/json"}, _raw_json(message)

    def _probe_request(self):
        message = b"Subject: fn_outbound_email selftest (never sent: no recipient)\r\n\r\nselftest\r\n"
        return "POST", self._url(), {"Content-Type": "application/json"}, _raw_json(message)

    def _probe_passed(self, answer):
        return (answer.status == 400 and not _precondition_failed(answer)) or 200 <= answer.status < 300

    def _refusal_hint(self, answer, size):
        if answer.status == 403 or _precondition_failed(answer):
            return PERMISSION_HINT.format(self.mailbox)
        if answer.status == 401:
            return "a new token was refused too: check the service account key and its delegation"
        if answer.status == 404:
            return "Google knows no mailbox {0}: check oauth2_subject (a user of the Workspace domain)".format(
                self.mailbox)
        if answer.status == 413:
            return "the message of {0} bytes is more than Gmail accepts (its documented limit: {1} bytes)".format(
                size, GMAIL_MAX_MESSAGE_BYTES)
        return ""


def _precondition_failed(answer):
    """Google's 400 for a mailbox the service account may not act for (no delegation, Gmail off)."""
    return answer.status == 400 and answer.code in ("failedPrecondition", "FAILED_PRECONDITION")


def _raw_json(message):
    raw = base64.urlsafe_b64encode(bytes(message)).decode("ascii")
    return json.dumps({"raw": raw}).encode("ascii")
