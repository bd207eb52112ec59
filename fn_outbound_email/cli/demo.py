# -*- coding: utf-8 -*-
"""`outbound-email demo`: the one-command first run.

No SOAR and no mail server needed: a bundled sample incident is served by an
offline SOAR stand-in, the request goes through send_email2's own code
(``build_request``, ``Mailer.prepare``/``deliver``, ``result_content``) and is
delivered over real SMTP to a receiver on 127.0.0.1. What the receiver got is
saved as an .eml file. With ``--transport graph`` it goes through the Microsoft Graph transport instead, to a
local Graph stand-in (cli/local_graph.py) that also issues the app-only token.
"""

import contextlib
import os
import re
import tempfile
from email.utils import parseaddr

from fn_outbound_email.cli.common import (EXIT_OK, SHIPPED_TEMPLATE, TemplateVariablesRenderer, describe_parts,
                                          parse_message, print_template_warnings, report_failure, write_file)
from fn_outbound_email.cli.local_graph import LocalGraphServer
from fn_outbound_email.cli.local_smtp import LocalSmtpServer
from fn_outbound_email.cli.offline_soar import (add_data_file_arguments, describe_sources, load_incident_data,
                                                offline_soar_client)
from fn_outbound_email.components.funct_send_email2 import build_request, result_content
from fn_outbound_email.lib.errors import MailError, TemplateError
from fn_outbound_email.lib.mailer import Mailer
from fn_outbound_email.lib.settings import SECTION, TEMPLATES_SECTION, load_settings

COMMAND = "demo"
DEMO_SENDER = "SOAR Outbound Email <soar@example.com>"
DEMO_TO = "SOC Team <soc@example.com>"
DEMO_CC = "Alex Analyst <alex.analyst@example.com>"
DEMO_BCC = "audit@example.com"
TEMPLATE_LABEL = "demo"
# the shipped template's optional sections, on: the demo shows artifacts and notes too
TEMPLATE_SWITCHES = {"show_artifacts": True, "show_notes": True}


def register(subparsers):
    parser = subparsers.add_parser(
        COMMAND, help="send a sample incident mail to a built-in local SMTP server and save it as .eml",
        description="Render a template over a bundled sample incident (artifacts, notes, an attachment), send it "
                    "through the app's send_email2 path over SMTP to a receiver on 127.0.0.1, and save what the "
                    "receiver got as an .eml file. Needs no SOAR and no mail server. With --incident (and "
                    "--artifacts, --notes, --fields) your files replace those pieces of the sample; attachments "
                    "and data tables always come from the sample, and the summary says which data came from where. "
                    "Dates are written as a default install writes them (ISO 8601, app.config date_format unset).")
    parser.add_argument("--template", metavar="FILE",
                        help="Jinja template to send (default: the shipped example_send_email.jinja); the variables "
                             "show_artifacts and show_notes are true")
    add_data_file_arguments(parser)
    parser.add_argument("--out", metavar="DIR", default="outbox", help="folder for the .eml file (default: ./outbox)")
    parser.add_argument("--transport", choices=("smtp", "graph"), default="smtp",
                        help="smtp (default): deliver over SMTP to a local receiver; graph: through the Microsoft "
                             "Graph transport (app-only token, sendMail) to a local Graph endpoint")
    parser.add_argument("--sign", action="store_true",
                        help="sign with S/MIME using a throwaway test identity made for this run; its CA "
                             "certificate is saved next to the .eml so the signature can be verified")
    parser.set_defaults(run=run)


def run(args):
    try:
        return _demo(args)
    except (MailError, ValueError, OSError) as err:
        return report_failure(COMMAND, err, _template_path(args))


def demo_inputs(incident):
    """send_email2's function inputs, as a playbook would fill them for this incident."""
    return {
        "mail_incident_id": incident["id"],
        "mail_from": DEMO_SENDER,
        "mail_to": DEMO_TO,
        "mail_cc": DEMO_CC,
        "mail_bcc": DEMO_BCC,
        "mail_subject": "[SOAR] Incident {0}: {1}".format(incident["id"], incident.get("name") or ""),
        "mail_template_label": TEMPLATE_LABEL,
        "mail_attachments": "*",
        "mail_importance": "high",
    }


def _template_path(args):
    return os.path.abspath(args.template) if args.template else SHIPPED_TEMPLATE


def _demo(args):
    template_path = _template_path(args)
    if not os.path.isfile(template_path):
        raise TemplateError("the template file does not exist")      # run() puts the path in front
    data = load_incident_data(incident=args.incident, artifacts=args.artifacts, notes=args.notes, fields=args.fields)

    with contextlib.ExitStack() as cleanup:
        server, app_config = _receiver(cleanup, getattr(args, "transport", "smtp"))
        ca_cert_pem = None
        if args.sign:
            # the private key exists only in this folder, which is removed when the demo ends
            key_folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="outbound-email-demo-"))
            ca_cert_pem = _configure_signing(app_config, key_folder)
        settings = load_settings({SECTION: app_config, TEMPLATES_SECTION: {TEMPLATE_LABEL: template_path}})
        renderer = TemplateVariablesRenderer(TEMPLATE_SWITCHES)
        mailer = Mailer(settings, offline_soar_client(data), renderer=renderer)

        outcome = mailer.deliver(mailer.prepare(build_request(demo_inputs(data.incident))))
        result = result_content(outcome)
        received = server.messages

    if len(received) != 1:
        raise MailError("The local SMTP server received {0} messages, expected 1".format(len(received)))
    saved_as = os.path.join(args.out, _file_stem(result["message_id"]))
    eml_path = write_file(saved_as + ".eml", received[0].data)
    ca_path = write_file(saved_as + ".ca.pem", ca_cert_pem) if ca_cert_pem else None
    _print_summary(server, received[0], result, eml_path, ca_path, template_path, data.incident_id,
                   describe_sources(args))
    print_template_warnings(COMMAND, renderer)
    return EXIT_OK


def _receiver(cleanup, transport):
    """The local receiver of ``transport``, started, and the app.config that sends to it."""
    app_config = {"smtp_conn_timeout": "10", "smtp_retries": "0"}      # date_format unset, as installed
    if transport == "graph":
        server = cleanup.enter_context(LocalGraphServer())
        app_config.update(transport="graph", graph_url=server.base_url, oauth2_grant="client_credentials",
                          client_id=server.client_id, client_secret=server.client_secret, token_url=server.token_url,
                          oauth2_subject=parseaddr(DEMO_SENDER)[1])
        return server, app_config
    server = cleanup.enter_context(LocalSmtpServer())
    app_config.update(smtp_server=server.host, smtp_port=str(server.port), smtp_ssl_mode="None")
    return server, app_config


def _configure_signing(app_config, key_folder):
    """Put a throwaway identity's PKCS#12 in ``key_folder`` and point app_config at it; returns the CA PEM."""
    from fn_outbound_email.cli.demo_identity import make_demo_identity
    identity = make_demo_identity(parseaddr(DEMO_SENDER)[1])
    bundle_path = write_file(os.path.join(key_folder, "demo-sender.p12"), identity.p12_bundle)
    app_config["p12_signing_encrypting_cert"] = bundle_path
    app_config["p12_signing_encrypting_cert_password"] = identity.password
    return identity.ca_cert_pem


def _file_stem(message_id):
    """A file name from the Message-ID's local part (unique per message, safe as a name)."""
    local_part = message_id.strip("<>").split("@", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]", "_", local_part).strip("._") or "message"


def _print_summary(server, received, result, eml_path, ca_path, template_path, incident_id, sources):
    message = parse_message(received.data)
    header_recipients = {address.addr_spec.lower() for name in ("To", "Cc") for header in message.get_all(name, [])
                         for address in header.addresses}
    bcc_only = [address for address in received.rcpt_tos if address.lower() not in header_recipients]
    attachments = result["attachments"]
    lines = [
        "Sent a mail about incident {0} through send_email2's code path to the {1} {2}:{3}.".format(
            incident_id, getattr(server, "description", "local SMTP server"), server.host, server.port),
        "",
        "  Incident data: {0}".format(sources),
        "  Template:     {0}".format(template_path),
        "  Subject:      {0}".format(str(message["Subject"]).strip()),   # a folded Subject starts with a blank
        "  From:         {0}".format(message["From"]),
        "  To:           {0}".format(message["To"]),
        "  Cc:           {0}".format(message["Cc"]),
        "  Bcc:          {0} ({1})".format(", ".join(bcc_only) or "-", "in the SMTP envelope only, never in a header"
                                            if isinstance(server, LocalSmtpServer) else
                                            "in the request's Bcc header only, which the API removes before delivery"),
        "  Accepted by the server: {0}".format(", ".join(result["recipients"]["accepted"])),
        "  Message-ID:   {0}".format(result["message_id"]),
        "  Attachments:  {0}".format(", ".join(attachments["sent"]) or "-"),
        "  Signed:       {0}".format("yes (S/MIME, throwaway test identity)" if result["signed"] else "no"),
        "  Size:         {0} bytes".format(len(received.data)),
        "  MIME parts:",
    ]
    lines += describe_parts(message, indent="    ")
    lines += ["", "Saved: {0}".format(eml_path)]
    if ca_path:
        lines += ["Test CA certificate: {0}".format(ca_path),
                  "Verify the signature: openssl smime -verify -in {0} -CAfile {1} -out /dev/null".format(
                      eml_path, ca_path)]
    lines += ["", "Open the .eml in a mail client to see the message. Preview your own template with:",
              "  outbound-email render --template my_template.jinja"]
    print("\n".join(lines))
