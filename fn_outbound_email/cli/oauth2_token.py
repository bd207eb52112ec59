# -*- coding: utf-8 -*-
"""`outbound-email oauth2-token` (not built yet)."""


def register(subparsers):
    parser = subparsers.add_parser("oauth2-token", help="(not built yet)")
    parser.set_defaults(run=run)


def run(args):
    print("outbound-email oauth2-token is not built yet")
    return 2
