#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Packaging for fn_outbound_email (layout as resilient-sdk codegen makes it)."""

from setuptools import setup, find_namespace_packages

setup(
    name="fn_outbound_email",
    display_name="Outbound Email",
    version="3.0.0",
    license="MIT",
    author="fn_outbound_email developers",
    author_email="",
    url="",
    description="Send templated, signed and encrypted email about IBM QRadar SOAR incidents and tasks",
    long_description="""Outbound Email for IBM QRadar SOAR: render Jinja templates over incident data,
attach incident and task files, sign and encrypt with S/MIME, authenticate by password or OAuth2
(XOAUTH2) and deliver over SMTP, plain, STARTTLS or implicit TLS.""",
    install_requires=[
        "resilient-circuits>=51.0.0",
        "resilient-lib>=51.0.0",
        "Jinja2>=3.0",
        "beautifulsoup4>=4.9",
        "six",
        "cryptography>=45",
        # safe_html's sanitizer (Rust's ammonia); 0.3.8 has Cleaner and url_relative="deny"
        "nh3~=0.3.8",
    ],
    extras_require={
        # what the test suite needs besides the app: a real SMTP server and the SOAR mock
        "test": ["pytest>=7", "pytest-resilient-circuits>=51.0.0", "aiosmtpd>=1.4", "resilient-sdk>=51.0.0"],
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
