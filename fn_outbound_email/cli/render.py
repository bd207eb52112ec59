# -*- coding: utf-8 -*-
"""`outbound-email render`: preview a template without sending anything.

The template is rendered by the app's Mailer, so the preview is what a mail
would contain: offline against incident JSON files (by default the bundled
sample), or live against SOAR with an app.config. Writes preview.html and
preview.txt (a text template: only preview.txt), or with ``--eml`` the whole
composed message as preview.eml.
"""

import dataclasses
import json
import os
import re

from fn_outbound_email.cli.common import (APP_CONTEXT_NAMES, EXIT_OK, SHIPPED_TEMPLATE, TemplateVariablesRenderer,
                                          describe_parts, parse_message, print_template_warnings, read_app_config,
                                          report_failure, write_file)
from fn_outbound_email.cli.offline_soar import add_data_file_arguments, load_incident_data, offline_soar_client
from fn_outbound_email.components.funct_send_email2 import build_request
from fn_outbound_email.lib.errors import ConfigurationError, MailError
from fn_outbound_email.lib.mailer import Mailer
from fn_outbound_email.lib.settings import SECTION, load_settings
from fn_outbound_email.lib.soar.client import SoarError

COMMAND = "render"
PREVIEW_NAME = "preview"
PREVIEW_SENDER = "SOAR <soar@example.com>"
PREVIEW_RECIPIENT = "recipient@example.com"
# settings for a Mailer that only renders and composes: it never connects to this server
RENDER_ONLY_CONFIG = {SECTION: {"smtp_server": "localhost"}}
LIVE_CONNECTION_TRIES = 2
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(subparsers):
    parser = subparsers.add_parser(
        COMMAND, help="preview a template against incident data: HTML and text files, or a whole .eml",
        description="Render a template the way the app does, against incident JSON files (default: the bundled "
                    "sample incident) or live from SOAR (-c app.config --incident-id N). Nothing is sent.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-t", "--template", metavar="FILE",
                       help="the Jinja template (default: the shipped example_send_email.jinja)")
    which.add_argument("--label", metavar="NAME", help="a template label of [fn_outbound_email:templates] (needs -c)")
    parser.add_argument("-c", "--config", metavar="APP_CONFIG",
                        help="app.config: template labels, date_format and (with --eml) S/MIME signing; with "
                             "--incident-id also the SOAR connection")
    parser.add_argument("--incident-id", type=int, metavar="N", help="read incident N live from SOAR (needs -c)")
    add_data_file_arguments(parser)
    parser.add_argument("--set", dest="variables", action="append", default=[], metavar="NAME=VALUE",
                        help="a template variable, e.g. --set show_artifacts=true; VALUE is read as JSON when it "
                             "parses, else as text (repeatable)")
    parser.add_argument("--out", metavar="DIR", default=".", help="folder for the preview files (default: .)")
    eml = parser.add_argument_group("a whole message")
    eml.add_argument("--eml", action="store_true",
                     help="write the composed message (headers, text and HTML parts, attachments; signed when "
                          "app.config sets a p12 bundle) as preview.eml instead; nothing is sent")
    eml.add_argument("--to", metavar="ADDRESSES", default=PREVIEW_RECIPIENT,
                     help="mail_to (default: {0})".format(PREVIEW_RECIPIENT))
    eml.add_argument("--from", dest="sender", metavar="ADDRESS",
                     help="mail_from (default: app.config's from_email_address, else {0})".format(PREVIEW_SENDER))
    eml.add_argument("--subject", help="mail_subject (default: 'Incident <id>: <name>')")
    eml.add_argument("--attachments", metavar="NAMES",
                     help="mail_attachments: '*' or a comma list of the incident's attachment names")
    parser.set_defaults(run=run, parser=parser)


def run(args):
    _check_arguments(args)
    template_path = None
    try:
        opts = read_app_config(args.config) if args.config else RENDER_ONLY_CONFIG
        settings = load_settings(opts)
        template_path = _template_path(args, settings)
        if not args.eml:
            settings = dataclasses.replace(settings, p12_bundle=None)   # html/txt previews need no signature
        soar, incident = _incident_source(args, opts)
        renderer = TemplateVariablesRenderer(_variables(args))
        mailer = Mailer(settings, soar, renderer=renderer)
        inputs = {
            "mail_incident_id": incident["id"],
            "mail_to": args.to,
            "mail_from": args.sender or (None if settings.default_sender else PREVIEW_SENDER),
            "mail_subject": args.subject or "Incident {0}: {1}".format(incident["id"], incident.get("name") or ""),
            "mail_attachments": args.attachments,
        }
        # send_email2's request, with the template given as a file (a label is resolved to its file above)
        request = dataclasses.replace(build_request(inputs), template_file=template_path)
        prepared = mailer.prepare(request)
        written = _write_previews(prepared, args)
    except (MailError, ValueError, OSError) as err:
        return report_failure(COMMAND, err, template_path)
    for line in written:
        print(line)
    print_template_warnings(COMMAND, renderer)
    return EXIT_OK


def _check_arguments(args):
    """Combinations argparse cannot express; parser.error exits with code 2 and the usage."""
    parser = args.parser
    if args.label and not args.config:
        parser.error("--label needs -c app.config (the labels are in its [fn_outbound_email:templates])")
    if args.incident_id is not None:
        if not args.config:
            parser.error("--incident-id needs -c app.config (the SOAR connection)")
        if any((args.incident, args.artifacts, args.notes, args.fields)):
            parser.error("--incident-id reads everything from SOAR; do not combine it with --incident, --artifacts, "
                         "--notes or --fields")
    for item in args.variables:
        name = item.partition("=")[0]
        if "=" not in item or not _VARIABLE_NAME.match(name):
            parser.error("--set takes NAME=VALUE with a template variable name, not {0!r}".format(item))
        if name in APP_CONTEXT_NAMES:
            parser.error("--set {0}: '{0}' is filled by the app and cannot be set".format(name))


def _variables(args):
    variables = {}
    for item in args.variables:
        name, _, text = item.partition("=")
        try:
            variables[name] = json.loads(text)
        except ValueError:
            variables[name] = text
    return variables


def _template_path(args, settings):
    if args.label:
        path = settings.template_for_label(args.label)     # whatever its case, as the send path matches it
        if not path:
            raise ConfigurationError("Template label '{0}' is not in [fn_outbound_email:templates] of {1} (it has: "
                                     "{2})".format(args.label, args.config, ", ".join(sorted(settings.templates)) or
                                                   "none"))
        return path
    return os.path.abspath(args.template) if args.template else SHIPPED_TEMPLATE


def _incident_source(args, opts):
    """(SoarClient, incident): live from SOAR with --incident-id, else the offline JSON files."""
    if args.incident_id is not None:
        soar = _live_soar(opts)
        try:
            return soar, soar.get_incident(args.incident_id)
        except SoarError:          # it names the incident and how SOAR answered already
            raise
        except Exception as err:   # anything else the resilient client raises
            raise MailError("Cannot read incident {0} from SOAR: {1}".format(args.incident_id, err))
    data = load_incident_data(incident=args.incident, artifacts=args.artifacts, notes=args.notes, fields=args.fields)
    return offline_soar_client(data), data.incident


def _live_soar(opts):
    import resilient
    from fn_outbound_email.lib.soar.client import SoarClient
    try:
        # resilient retries a failed connection for ever by default; a preview should fail soon
        client = resilient.get_client(opts, max_connection_retries=LIVE_CONNECTION_TRIES)
    except Exception as err:   # resilient raises many kinds; the message is what the admin needs
        raise ConfigurationError("Cannot connect to SOAR with the [resilient] section of the app.config: {0}".format(
            err))
    return SoarClient.for_app(client, opts)


def _write_previews(prepared, args):
    """Write the preview files; returns what to print."""
    if args.eml:
        path = write_file(os.path.join(args.out, PREVIEW_NAME + ".eml"), prepared.message)
        lines = ["Wrote {0} ({1} bytes, not sent):".format(path, len(prepared.message))]
        return lines + describe_parts(parse_message(prepared.message), indent="  ")
    message = parse_message(prepared.message)
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    written = []
    if html_part is not None:
        written.append(write_file(os.path.join(args.out, PREVIEW_NAME + ".html"), html_part.get_content()))
    if text_part is not None:
        written.append(write_file(os.path.join(args.out, PREVIEW_NAME + ".txt"), text_part.get_content()))
    return ["Wrote {0}".format(path) for path in written]
