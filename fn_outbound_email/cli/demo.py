# -*- coding: utf-8 -*-
"""`outbound-email demo` (not built yet)."""


def register(subparsers):
    parser = subparsers.add_parser("demo", help="(not built yet)")
    parser.set_defaults(run=run)


def run(args):
    print("outbound-email demo is not built yet")
    return 2
