# -*- coding: utf-8 -*-
"""`outbound-email check`: the selftest's SMTP connection test from app.config alone, with no SOAR.

``resilient-circuits selftest`` first connects to SOAR and its STOMP port and only then runs the app's
selftest; this runs the same ``selftest_function`` (connect as sending does, TLS, AUTH or XOAUTH2, NOOP,
QUIT; no mail) on the [fn_outbound_email] section, so the mail side can be checked where SOAR is not
reachable yet.
"""

import logging

from fn_outbound_email.cli.common import (DEFAULT_CONFIG_HELP, EXIT_FAILED, EXIT_OK, default_app_config_path, error,
                                          read_app_config)
from fn_outbound_email.lib.errors import ConfigurationError
from fn_outbound_email.lib.settings import load_settings
from fn_outbound_email.util import selftest

COMMAND = "check"


def register(subparsers):
    parser = subparsers.add_parser(
        COMMAND, help="test the SMTP connection and login as the selftest does, from app.config alone (no SOAR)",
        description="Connect to the SMTP server of app.config's [fn_outbound_email] section exactly as sending "
                    "does (TLS mode, certificate check, AUTH or XOAUTH2), then NOOP and QUIT: the connection test "
                    "of 'resilient-circuits selftest', without SOAR. No mail is sent. Exit status 0 when it "
                    "passes, 1 when it fails.")
    parser.add_argument("-c", "--config", metavar="APP_CONFIG", help="the app.config ({0})".format(DEFAULT_CONFIG_HELP))
    parser.set_defaults(run=run, parser=parser)


def run(args):
    path = default_app_config_path(args.config)
    if path is None:
        error(COMMAND, "no app.config found: give one with -c FILE")
        return EXIT_FAILED
    try:
        opts = read_app_config(path)
    except ConfigurationError as err:
        error(COMMAND, err)
        return EXIT_FAILED
    # the result is printed below; selftest's own log lines would say it a second time
    logging.getLogger(selftest.__name__).setLevel(logging.CRITICAL)
    result = selftest.selftest_function(opts)
    if result.get("state") != "success":
        error(COMMAND, result.get("reason"))
        return EXIT_FAILED
    settings = load_settings(opts)
    if settings.oauth2:
        login = ", authenticated with XOAUTH2 (OAuth2 {0})".format(settings.oauth2.grant_description)
    else:
        login = ", logged in as {0}".format(settings.smtp_user) if settings.smtp_user else ", no login"
    print("Connection check passed: {0}:{1}, TLS mode {2}{3}. No mail was sent.".format(
        settings.smtp_server, settings.smtp_port, settings.ssl_mode, login))
    return EXIT_OK
