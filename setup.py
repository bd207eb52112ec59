#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Packaging for fn_outbound_email (layout as resilient-sdk codegen makes it)."""

from setuptools import find_namespace_packages
import setuptools

# resilient-sdk reads display_name from the call below (it evaluates the text from the first line that calls
# 'setup' with a stand-in of its own); setuptools does not know the option and would warn, so the call goes
# through this wrapper, which hands setuptools the rest. No line above the call may name that function followed by
# an opening parenthesis, or the SDK would start reading there.
setuptools_entry = setuptools.setup


def _without_display_name(display_name, **options):
    return setuptools_entry(**options)


setup = _without_display_name

setup(
    name="fn_outbound_email",
    display_name="Outbound Email",
    version="3.0.0",
    license="MIT",
    author="fn_outbound_email developers",
    author_email="",
    # no public page of its own: the page of IBM's Outbound Email app, which this app replaces (see README.md)
    url="https://github.com/ibmresilient/resilient-community-apps/tree/main/fn_outbound_email",
    description="Send templated, signed and encrypted email about IBM QRadar SOAR incidents and tasks",
    # one line per string and no 'name(' on a line: resilient-sdk package reads this file line by line,
    # doubles line breaks inside a string and comments out any line that looks like a call
    long_description="Outbound Email sends mail about IBM QRadar SOAR incidents and tasks from playbooks. "
                     "Its two functions, Send Email 2 and the older Send Email, render Jinja templates over the "
                     "incident's fields, artifacts, notes and data tables in a sandbox, attach incident and task "
                     "files, sign and encrypt with S/MIME, log in with a password or with OAuth2 (XOAUTH2, for "
                     "Microsoft 365 and Google) and deliver over SMTP, plain, with STARTTLS or with implicit TLS, "
                     "checking the server certificate. Results list the accepted and refused recipients and the "
                     "attachments sent, and the example playbooks record every mail in the incident's Email "
                     "Conversations table. It is a drop-in replacement for IBM's Outbound Email app 2.1.2: the "
                     "same function inputs, outputs, app.config settings and customizations.",
    # '~=': the release series each library was tested with, as resilient-sdk validate asks
    # (resilient-circuits keeps '>=', the SDK's rule for it)
    install_requires=[
        "resilient-circuits>=51.0.0",
        "resilient-lib~=51.0",
        "Jinja2~=3.0",
        "beautifulsoup4~=4.9",
        "six~=1.16",
        "cryptography~=50.0",
        "aiosmtpd~=1.4",
        "PyJWT~=2.8",
        "idna~=3.7",
        # safe_html's sanitizer (Rust's ammonia); 0.3.8 has Cleaner and url_relative="deny"
        "nh3~=0.3.8",
    ],
    extras_require={
        # what the test suite needs besides the app (which brings aiosmtpd): the SOAR mock and resilient-sdk;
        # import-linter checks the import layers (.importlinter; .ci/run runs lint-imports); like resilient-sdk it
        # needs Python 3.11
        "test": ["pytest>=7", "pytest-resilient-circuits>=51.0.0", "resilient-sdk>=51.0.0", "import-linter~=2.17"],
    },
    python_requires=">=3.9",
    # namespace discovery also takes the data folders (templates, export.res), which have no __init__.py
    packages=find_namespace_packages(include=["fn_outbound_email", "fn_outbound_email.*"]),
    include_package_data=True,
    platforms="any",
    classifiers=["Programming Language :: Python"],
    entry_points={
        "resilient.circuits.components": [
            "SendEmailFunctionComponent = fn_outbound_email.components.funct_send_email:FunctionComponent",
            "SendEmail2FunctionComponent = fn_outbound_email.components.funct_send_email2:FunctionComponent",
            "StartupCustomizationsComponent = fn_outbound_email.components.startup_customizations:StartupCustomizationsComponent",
        ],
        "resilient.circuits.configsection": ["gen_config = fn_outbound_email.util.config:config_section_data"],
        "resilient.circuits.customize": ["customize = fn_outbound_email.util.customize:customization_data"],
        "resilient.circuits.selftest": ["selftest = fn_outbound_email.util.selftest:selftest_function"],
        "console_scripts": ["outbound-email = fn_outbound_email.cli.main:main"],
    },
)
