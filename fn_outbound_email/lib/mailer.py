# -*- coding: utf-8 -*-
"""The one send pipeline both SOAR functions use.

``Mailer.prepare`` checks the request, renders the body, fetches attachments
and composes the message (optionally signed and encrypted); ``Mailer.deliver``
hands it to the transport (lib/delivery/). Input mistakes raise ``ValueError``; anything else that stops
a send raises a ``MailError`` whose text is the reason shown in SOAR.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

from fn_outbound_email.lib.delivery.factory import build_transport
from fn_outbound_email.lib.errors import MailError, TemplateError
from fn_outbound_email.lib.message import compose
from fn_outbound_email.lib.message.addresses import (check_header_text, needs_smtputf8, parse_address,
                                                     parse_address_list, unique_envelope_recipients)
from fn_outbound_email.lib.templates.helper import LazyList, TemplateHelper
from fn_outbound_email.lib.templates.worker import renderer as default_renderer

LOG = logging.getLogger(__name__)

IMPORTANCE_VALUES = ("low", "normal", "high")
NO_BODY_REASON = "No email body or template specified"


class NoBodyError(MailError):
    """Neither a body nor a template was given (a result, not an exception, in SOAR)."""


@dataclass
class MailRequest:
    """What a function asks for; the text fields are the raw function inputs."""
    incident_id: Optional[int]
    to: Optional[str]
    cc: Optional[str] = None
    bcc: Optional[str] = None
    sender: Optional[str] = None
    subject: Optional[str] = None
    body: Optional[str] = None
    inline_template: Optional[str] = None
    template_label: Optional[str] = None
    template_file: Optional[str] = None
    merge_body: bool = False
    attachments: Optional[str] = None
    importance: Optional[str] = None
    message_id: Optional[str] = None
    in_reply_to: Optional[str] = None
    encryption_recipients: Optional[str] = None
    plain_text_only: bool = False          # send_email's mail_body_text is text even if it looks like HTML
    message_id_local_part: Optional[str] = None   # a SOAR invocation's own (lib/soar/invocation.py), not random
    mail_inputs: Dict[str, object] = field(default_factory=dict)   # the template's `mail`


@dataclass
class PreparedMail:
    message: bytes
    envelope_from: str
    recipients: List[str]
    body: str
    sender: str
    message_id: str
    attachments_sent: List[str]
    attachments_missing: List[str]
    signed: bool
    encrypted: bool
    smtputf8: bool = False          # a non-ASCII local part: the transport must use SMTPUTF8 (RFC 6531)


@dataclass
class SendOutcome:
    body: str
    sender: str
    message_id: str
    accepted: List[str]
    refused: Dict[str, str]
    attachments_sent: List[str]
    attachments_missing: List[str]
    signed: bool
    encrypted: bool


class AddressList(list):
    """Addresses for templates: a list, as the original app gives ``mail.mail_to`` (so loops and ``join`` work),
    that prints as the comma separated text (so ``{{ mail.mail_to }}`` shows the addresses, not a Python list)."""

    def __str__(self):
        return ", ".join(self)


def _template_mail(inputs, sender, to, cc, bcc):
    """The template's ``mail``: the function inputs, with the sender used and the address inputs as AddressLists."""
    mail = dict(inputs)
    mail.update(mail_from=str(sender), mail_to=AddressList(map(str, to)), mail_cc=AddressList(map(str, cc)),
                mail_bcc=AddressList(map(str, bcc)))
    return mail


def _declared_size(attachment):
    """The attachment's size in bytes as SOAR's attachment list gives it, or None."""
    try:
        size = int(attachment.get("size"))
    except (TypeError, ValueError):
        return None
    return size if size >= 0 else None


def _encoded_size(size):
    return -(-size * 4 // 3)


class _AttachmentFetch:
    """``fetch(incident_id, spec, cancelled)`` running on a thread of its own; ``cancel`` stops its downloads."""

    def __init__(self, fetch, incident_id, spec):
        self._cancelled = threading.Event()
        runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attachments")
        try:
            self._future = runner.submit(fetch, incident_id, spec, self._cancelled)
        finally:
            runner.shutdown(wait=False)          # its thread ends with its one task

    def result(self):
        return self._future.result()

    def cancel(self):
        self._cancelled.set()


class _NoAttachmentFetch:
    @staticmethod
    def result():
        return [], [], []

    @staticmethod
    def cancel():
        pass


_NO_ATTACHMENTS = _NoAttachmentFetch()


def mailer_for(opts, rest_client, requests_common=None):
    """The Mailer for a function call: settings from app.config, SOAR access through ``rest_client``."""
    from fn_outbound_email.lib.settings import load_settings
    from fn_outbound_email.lib.soar.client import SoarClient
    return Mailer(load_settings(opts), SoarClient.for_app(rest_client, opts), requests_common=requests_common)


def send_with_progress(component, make_request):
    """Prepare and deliver for a function component, yielding its status messages.

    ``make_request(mailer)`` builds the MailRequest; the return value (use
    ``yield from``) is the SendOutcome. MailError and ValueError propagate.
    """
    mailer = mailer_for(component.opts, component.rest_client(), component.rc)
    prepared = mailer.prepare(make_request(mailer))
    yield component.status_message("Delivering {0} ({1} bytes) to {2} recipient(s)".format(
        prepared.message_id, len(prepared.message), len(prepared.recipients)))
    return mailer.deliver(prepared)


class Mailer:
    def __init__(self, settings, soar, transport=None, renderer=None, requests_common=None):
        self._settings = settings
        self._soar = soar
        self._transport = transport or build_transport(settings, requests_common)
        self._renderer = renderer or default_renderer

    @property
    def default_template_file(self):
        """app.config template_file, send_email's template when the function gives none."""
        return self._settings.template_file

    @property
    def default_sender(self):
        """app.config from_email_address (or smtp_user when an address); send_email's recipient without mail_to."""
        return self._settings.default_sender

    def sender_for(self, request):
        """The sender text ``request`` goes out from: mail_from, else the default sender (None when neither)."""
        return (request.sender or "").strip() or self._settings.default_sender

    # --- the pipeline --------------------------------------------------------------------------------
    def send(self, request):
        return self.deliver(self.prepare(request))

    def prepare(self, request):
        """Validate, render, fetch attachments and compose; nothing is sent yet."""
        if request.inline_template and request.template_label:
            raise ValueError("Give either mail_inline_template or mail_template_label, not both")
        if request.incident_id in (None, ""):
            raise ValueError("mail_incident_id is required")
        try:
            incident_id = int(request.incident_id)
        except (TypeError, ValueError):
            raise ValueError("mail_incident_id must be a number, not {0!r}".format(request.incident_id))
        to = parse_address_list(request.to, "mail_to")
        if not to:
            raise ValueError("mail_to is required: give at least one recipient address")
        cc = parse_address_list(request.cc, "mail_cc")
        bcc = parse_address_list(request.bcc, "mail_bcc")
        sender_text = self.sender_for(request)
        if not sender_text:
            raise ValueError("No sender: give mail_from, or set from_email_address (or an address as smtp_user) "
                             "in app.config")
        sender = parse_address(sender_text, "mail_from")
        subject = check_header_text(request.subject, "mail_subject")
        importance = self._importance(request.importance)
        message_id = compose.normalize_message_id(request.message_id, "mail_message_id") or \
            compose.new_message_id(sender, request.message_id_local_part)
        in_reply_to = compose.normalize_message_id(request.in_reply_to, "mail_in_reply_to")
        recipient_certs = self._recipient_certificates(request.encryption_recipients)

        request = replace(request, mail_inputs=_template_mail(request.mail_inputs, sender, to, cc, bcc))
        # the attachments are fetched while the body renders: both wait mostly on SOAR
        fetching = self._start_attachments(incident_id, request.attachments)
        try:
            body, is_html = self._body(request, incident_id)
        except BaseException:
            fetching.cancel()
            raise
        attachments, sent, missing = fetching.result()

        content = compose.build_content(body, attachments, html=is_html)
        content, signed, encrypted = self._protect(content, recipient_certs)
        smtputf8 = needs_smtputf8([sender], to, cc, bcc)
        headers = compose.OuterHeaders(sender=sender, to=to, cc=cc, subject=subject, message_id=message_id,
                                       in_reply_to=in_reply_to, importance=importance, smtputf8=smtputf8)
        message = compose.assemble(headers, content)
        if len(message) > self._settings.max_message_size:
            raise MailError("The message is {0} bytes, more than max_message_size ({1} bytes); send fewer or smaller "
                            "attachments".format(len(message), self._settings.max_message_size))
        return PreparedMail(message=message, envelope_from=sender.addr_spec,
                            recipients=unique_envelope_recipients(to, cc, bcc), body=body, sender=str(sender),
                            message_id=message_id, attachments_sent=sent, attachments_missing=missing,
                            signed=signed, encrypted=encrypted, smtputf8=smtputf8)

    def deliver(self, prepared):
        started = time.monotonic()
        report = self._transport.deliver(prepared.envelope_from, prepared.recipients, prepared.message,
                                         smtputf8=prepared.smtputf8)
        LOG.info("Sent %s (%s bytes) to %s recipient(s), %s refused, in %s s", prepared.message_id,
                 len(prepared.message), len(report.accepted), len(report.refused),
                 "{0:.2f}".format(time.monotonic() - started))
        return SendOutcome(body=prepared.body, sender=prepared.sender, message_id=prepared.message_id,
                           accepted=report.accepted, refused=report.refused,
                           attachments_sent=prepared.attachments_sent,
                           attachments_missing=prepared.attachments_missing,
                           signed=prepared.signed, encrypted=prepared.encrypted)

    # --- steps ---------------------------------------------------------------------------------------
    @staticmethod
    def _importance(value):
        if value in (None, ""):
            return None
        importance = str(value).strip().lower()
        if importance not in IMPORTANCE_VALUES:
            raise ValueError("mail_importance must be one of low, normal, high, not {0!r}".format(value))
        return importance

    def _body(self, request, incident_id):
        """(body text, is_html): a template's kind decides HTML, a given body is examined (None)."""
        if request.inline_template:
            rendered = self._renderer.render(request.inline_template, self._context(request, incident_id),
                                             name="mail_inline_template", limits=self._settings.template_limits)
        elif request.template_label:
            path = self._settings.template_for_label(request.template_label)
            if not path:
                known = ", ".join(sorted(self._settings.templates)) or "none"
                raise TemplateError("Template label '{0}' is not defined in [fn_outbound_email:templates] of "
                                    "app.config (defined: {1})".format(request.template_label, known))
            rendered = self._renderer.render_file(path, self._context(request, incident_id),
                                                  limits=self._settings.template_limits)
        elif request.template_file:
            rendered = self._renderer.render_file(request.template_file, self._context(request, incident_id),
                                                  limits=self._settings.template_limits)
        else:
            if request.body in (None, ""):
                raise NoBodyError(NO_BODY_REASON)
            return request.body, (False if request.plain_text_only else None)
        text = str(rendered)
        if request.merge_body and request.body:
            text = text + "\n" + request.body
        return text, rendered.is_html

    def _context(self, request, incident_id):
        soar = self._soar
        return {
            "incident": soar.get_incident(incident_id),
            "artifact": LazyList(lambda: soar.get_artifacts(incident_id)),
            "note": LazyList(lambda: soar.get_notes(incident_id)),
            "mail": dict(request.mail_inputs),
            "template_helper": TemplateHelper(soar, self._settings.date_format),
        }

    def _start_attachments(self, incident_id, spec):
        """The attachments' fetch, under way on a thread of its own (no thread when there are none)."""
        if not spec or not str(spec).strip():
            return _NO_ATTACHMENTS
        return _AttachmentFetch(self._attachments, incident_id, spec)

    def _attachments(self, incident_id, spec, cancelled=None):
        """Attachments named in ``spec`` ('*' for all); names not found are reported, not fatal.

        The attachment list is read once. Before anything is downloaded, the sizes it gives (base64-encoded,
        4/3 of each) must fit in max_message_size; each download then stops at what is left of it.
        """
        if not spec or not str(spec).strip():
            return [], [], []
        wanted = [name.strip() for name in str(spec).split(",") if name.strip()]
        available = self._soar.list_attachments(incident_id)
        if "*" in wanted:
            chosen, missing = list(available), []
        else:
            chosen, missing = [], []
            for name in dict.fromkeys(wanted):       # each name once, in order
                matches = [item for item in available if item.get("name") == name]
                chosen.extend(matches)
                if not matches:
                    missing.append(name)
        limits, room = self._download_limits(chosen)
        contents = self._soar.get_attachment_contents(incident_id, chosen, limits, total_bytes=room,
                                                      cancelled=cancelled)
        attachments = [compose.Attachment(name=item.get("name") or "attachment", content=content)
                       for item, content in zip(chosen, contents)]
        if missing:
            LOG.warning("Attachments not found on incident %s: %s", incident_id, ", ".join(missing))
        return attachments, [item.name for item in attachments], missing

    def _download_limits(self, chosen):
        """The most bytes each chosen attachment may have, and all of them together; MailError naming them when
        their listed sizes cannot fit."""
        limit = self._settings.max_message_size
        sizes = [_declared_size(item) for item in chosen]
        total, too_many = 0, []
        for item, size in zip(chosen, sizes):
            total += _encoded_size(size or 0)
            if total > limit:
                too_many.append("'{0}' ({1} bytes)".format(item.get("name"), size))
        if too_many:
            raise MailError("The attachments do not fit in max_message_size ({0} bytes): base64-encoded they need "
                            "about {1} bytes, and {2} go past the limit. Nothing was downloaded or sent; send fewer "
                            "or smaller attachments".format(limit, total, ", ".join(too_many)))
        known = sum(size or 0 for size in sizes)
        room = limit * 3 // 4                   # raw bytes that fit once base64-encoded
        return [room - known + (size or 0) for size in sizes], room

    def _recipient_certificates(self, pem_text):
        if not pem_text or not str(pem_text).strip():
            return None
        from fn_outbound_email.lib.message import smime
        return smime.parse_recipient_certificates(str(pem_text))

    def _protect(self, content, recipient_certs):
        """Sign with the configured bundle and encrypt to the recipients' certificates, when asked.

        An unprotected entity stays a MIMEPart: assemble writes it once, straight into the message bytes.
        """
        if not self._settings.p12_bundle and not recipient_certs:
            return content, False, False
        from fn_outbound_email.lib.message import smime
        identity = None
        if self._settings.p12_bundle:
            identity = smime.load_signing_identity(self._settings.p12_bundle, self._settings.p12_password)
        protected = smime.protect_entity(compose.entity_bytes(content), identity=identity, recipients=recipient_certs)
        return protected, identity is not None, bool(recipient_certs)
