# -*- coding: utf-8 -*-
"""`outbound-email render` (not built yet)."""


def register(subparsers):
    parser = subparsers.add_parser("render", help="(not built yet)")
    parser.set_defaults(run=run)


def run(args):
    print("outbound-email render is not built yet")
    return 2
