# -*- coding: utf-8 -*-
"""`outbound-email`: command line tools for the administrator and template authors."""

import argparse
import logging
import sys

from fn_outbound_email.cli import check, demo, oauth2_token, render
from fn_outbound_email.lib.templates import check as template_check

SUBCOMMANDS = (demo, render, check, oauth2_token)
DISTRIBUTION = "fn_outbound_email"

# shown by `outbound-email <command> --help`, and the first of each by `outbound-email --help`
EXAMPLES = {
    demo.COMMAND: [
        ("outbound-email demo", "send the sample incident mail to a local receiver, save it in ./outbox"),
        ("outbound-email demo --sign --out mails", "the same, signed with a throwaway S/MIME identity"),
        ("outbound-email demo --transport graph", "the same through the Graph transport, to a local endpoint"),
        ("outbound-email demo --template my.jinja --incident incident.json", "your template and incident"),
    ],
    render.COMMAND: [
        ("outbound-email render -t my.jinja", "preview.html and preview.txt from the bundled sample incident"),
        ("outbound-email render -t my.jinja --set show_notes=true --eml --attachments '*'",
         "a whole preview.eml, not sent"),
        ("outbound-email render -c app.config --label incident_summary --incident-id 2095",
         "a configured template over a live incident"),
    ],
    check.COMMAND: [
        ("outbound-email check -c app.config", "connect and log in to the SMTP server as the selftest does; no SOAR"),
        ("outbound-email check", "the same with ./app.config, else ~/.resilient/app.config"),
    ],
    oauth2_token.COMMAND: [
        ("outbound-email oauth2-token -c app.config", "sign in once and print the refresh_token line"),
        ("outbound-email oauth2-token -c app.config --no-browser --redirect-port 8400",
         "on a server: open the printed URL on your workstation"),
    ],
}


def package_version():
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:                     # pragma: no cover - Python < 3.8 has no importlib.metadata
        return "unknown"
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:            # run from a checkout that was never installed
        return "unknown (not installed)"


def _examples_text(examples):
    return "examples:\n" + "\n".join("  {0}\n      {1}".format(command, what) for command, what in examples)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, except that text with line breaks (the examples) keeps its lines as written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _add_common_options(parser, default):
    # in the main parser and in every subcommand, so that `outbound-email demo -v` works as `outbound-email -v demo`;
    # the subcommands' default is SUPPRESS, so an -v before the subcommand is not reset by the subcommand's parser
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log progress (never secrets)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="outbound-email", formatter_class=_HelpFormatter,
        description="Tools for the fn_outbound_email SOAR app: a first-run demo, template preview, an SMTP "
                    "connection check and an OAuth2 refresh-token helper.",
        epilog=_examples_text([EXAMPLES[module.COMMAND][0] for module in SUBCOMMANDS]) +
        "\n\n'outbound-email COMMAND --help' shows a command's options and more examples.")
    parser.add_argument("--version", action="version", version="%(prog)s {0}".format(package_version()))
    _add_common_options(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    for name, subparser in subparsers.choices.items():
        _add_common_options(subparser, default=argparse.SUPPRESS)
        subparser.formatter_class = _HelpFormatter
        subparser.epilog = _examples_text(EXAMPLES[name])
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # the template warnings the send path logs are printed by demo and render themselves, with the file's path
    logging.getLogger(template_check.__name__).setLevel(logging.ERROR)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
