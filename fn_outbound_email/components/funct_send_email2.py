# -*- coding: utf-8 -*-
"""Function send_email2: templated mail with headers, attachments and S/MIME."""

from resilient_circuits import AppFunctionComponent, FunctionResult, app_function
from resilient_lib import str_to_bool, validate_fields

from fn_outbound_email.components.reload import ClosesIdleSessionsOnReload
from fn_outbound_email.lib.errors import MailError
from fn_outbound_email.lib.mailer import MailRequest, send_with_progress
from fn_outbound_email.lib.soar.invocation import (current_invocation, invocation_handlers, redelivery_note,
                                                    with_invocation)

PACKAGE_NAME = "fn_outbound_email"
FN_NAME = "send_email2"


class FunctionComponent(invocation_handlers(FN_NAME), ClosesIdleSessionsOnReload, AppFunctionComponent):
    """Component that implements function 'send_email2'"""

    def __init__(self, opts):
        super(FunctionComponent, self).__init__(opts, PACKAGE_NAME)

    @app_function(FN_NAME)
    def _app_function(self, fn_inputs):
        yield self.status_message("Starting App Function: '{0}'".format(FN_NAME))
        validate_fields(["mail_to", "mail_incident_id"], fn_inputs)
        invocation = current_invocation(self)
        request = with_invocation(build_request(fn_inputs._asdict()), invocation)
        # a result names the sender used even when nothing was sent, as the original's does
        sender = [request.sender]

        def make_request(mailer):
            sender[0] = mailer.sender_for(request)
            return request

        try:
            outcome = yield from send_with_progress(self, make_request)
        except MailError as err:
            self.LOG.error("%s failed: %s", FN_NAME, err)
            yield FunctionResult(dict(failure_content(sender[0]), **redelivery_note(invocation)), success=False,
                                 reason=str(err))
            return

        yield self.status_message("Finished running App Function: '{0}'".format(FN_NAME))
        yield FunctionResult(dict(result_content(outcome), **redelivery_note(invocation)))


def build_request(inputs):
    """The MailRequest for send_email2's function inputs (a dict, select values already names)."""
    return MailRequest(
        incident_id=inputs.get("mail_incident_id"),
        to=inputs.get("mail_to"),
        cc=inputs.get("mail_cc"),
        bcc=inputs.get("mail_bcc"),
        sender=inputs.get("mail_from"),
        subject=inputs.get("mail_subject"),
        body=inputs.get("mail_body"),
        inline_template=inputs.get("mail_inline_template"),
        template_label=inputs.get("mail_template_label"),
        merge_body=str_to_bool(inputs.get("mail_merge_body") or False),
        attachments=inputs.get("mail_attachments"),
        importance=inputs.get("mail_importance"),
        message_id=inputs.get("mail_message_id"),
        in_reply_to=inputs.get("mail_in_reply_to"),
        encryption_recipients=inputs.get("mail_encryption_recipients"),
        mail_inputs=dict(inputs),
    )


def result_content(outcome):
    """send_email2's result content for a delivered message (SPEC 3.10)."""
    return {
        "mail_body": outcome.body,
        "mail_from": outcome.sender,
        "message_id": outcome.message_id,
        "recipients": {"accepted": outcome.accepted, "refused": outcome.refused},
        "attachments": {"sent": outcome.attachments_sent, "missing": outcome.attachments_missing},
        "signed": outcome.signed,
        "encrypted": outcome.encrypted,
    }


def failure_content(sender):
    """The result content of a send that did not happen."""
    return {
        "mail_body": None,
        "mail_from": sender,
        "message_id": None,
        "recipients": {"accepted": [], "refused": {}},
        "attachments": {"sent": [], "missing": []},
        "signed": False,
        "encrypted": False,
    }
