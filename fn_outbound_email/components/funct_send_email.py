# -*- coding: utf-8 -*-
"""Function send_email (legacy v1 inputs and result shape) on the shared mail pipeline."""

from resilient_circuits import AppFunctionComponent, FunctionResult, app_function
from resilient_lib import validate_fields

from fn_outbound_email.components.reload import ClosesIdleSessionsOnReload
from fn_outbound_email.lib.errors import MailError
from fn_outbound_email.lib.mailer import MailRequest, send_with_progress
from fn_outbound_email.lib.soar.invocation import (current_invocation, invocation_handlers, redelivery_note,
                                                    with_invocation)

PACKAGE_NAME = "fn_outbound_email"
FN_NAME = "send_email"


class FunctionComponent(invocation_handlers(FN_NAME), ClosesIdleSessionsOnReload, AppFunctionComponent):
    """Component that implements function 'send_email'"""

    def __init__(self, opts):
        super(FunctionComponent, self).__init__(opts, PACKAGE_NAME)

    @app_function(FN_NAME)
    def _app_function(self, fn_inputs):
        yield self.status_message("Starting App Function: '{0}'".format(FN_NAME))
        validate_fields(["mail_subject", "mail_incident_id"], fn_inputs)
        inputs = fn_inputs._asdict()
        invocation = current_invocation(self)
        # v1 echoes [from, to, cc, bcc, subject] as sent; the raw inputs until the mailer has filled in defaults
        echoed = [inputs.get(name) or "" for name in ("mail_from", "mail_to", "mail_cc", "mail_bcc", "mail_subject")]

        def make_request(mailer):
            request = with_invocation(build_request(inputs, mailer), invocation)
            echoed[:] = [mailer.sender_for(request) or "", request.to, request.cc or "", request.bcc or "",
                         request.subject]
            return request

        try:
            outcome = yield from send_with_progress(self, make_request)
        except MailError as err:
            self.LOG.error("%s failed: %s", FN_NAME, err)
            yield FunctionResult(dict({"inputs": echoed, "message": str(err), "text": None, "success": False},
                                      **redelivery_note(invocation)), success=False, reason=str(err))
            return

        yield self.status_message("Finished running App Function: '{0}'".format(FN_NAME))
        yield FunctionResult(dict({"inputs": echoed, "message": None, "text": outcome.body, "success": True},
                                  **redelivery_note(invocation)))


def build_request(inputs, mailer):
    """v1 precedence: the mail_body_html template, then app.config template_file, then mail_body_text as text.

    As in the original, an empty mail_to sends the mail to the app's own address (from_email_address).
    """
    template_file = None if inputs.get("mail_body_html") else mailer.default_template_file
    to = inputs.get("mail_to")
    if not (to or "").strip():
        to = mailer.default_sender
        if not to:
            raise ValueError("mail_to is empty and app.config [fn_outbound_email] sets no from_email_address (or "
                             "smtp_user address) to send to instead: give mail_to")
    return MailRequest(
        incident_id=inputs.get("mail_incident_id"),
        to=to,
        cc=inputs.get("mail_cc"),
        bcc=inputs.get("mail_bcc"),
        sender=inputs.get("mail_from"),
        subject=inputs.get("mail_subject"),
        inline_template=inputs.get("mail_body_html"),
        template_file=template_file,
        body=inputs.get("mail_body_text"),
        plain_text_only=not inputs.get("mail_body_html") and not template_file,
        attachments=inputs.get("mail_attachments"),
        mail_inputs=dict(inputs),
    )
