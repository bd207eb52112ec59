# -*- coding: utf-8 -*-
"""`outbound-email`: command line tools for the administrator and template authors."""

import argparse
import logging
import sys

from fn_outbound_email.cli import demo, oauth2_token, render

SUBCOMMANDS = (demo, render, oauth2_token)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="outbound-email",
        description="Tools for the fn_outbound_email SOAR app: a first-run demo, template preview "
                    "and an OAuth2 refresh-token helper.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (never secrets)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
