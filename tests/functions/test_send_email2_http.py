# -*- coding: utf-8 -*-
"""send_email2's result and content tests (tests/test_send_email2.py), run again with transport = graph and
transport = gmail_api: the same function, the same assertions on what the recipients get and on the result,
with the local Graph and Gmail endpoints (tests/support/mail_api_servers.py) in place of the SMTP server.

Left out: the tests of recipients an SMTP server refuses one by one, and of an SMTP server that is down
(tests/delivery/test_graph_gmail_api.py has the HTTP counterparts: the API accepts or refuses the message as
a whole), and the input and sandbox checks that stop a request before any transport is used.
"""

import os

import pytest

from tests.functions import test_send_email2 as smtp_cases
from tests.support.function_runner import app_config
from tests.support.mail_api_apps import MailApiSetup
from tests.support.smtp_server import free_port
from tests.support.soar_mock import SoarMock

PORTS = {"graph": (free_port(), free_port()), "gmail_api": (free_port(), free_port())}
TEMPLATES = {label: os.path.join(smtp_cases.TEMPLATES, file_name) for label, file_name in (
    ("fields", "incident_fields.jinja"), ("html", "incident_html.jinja"), ("related", "related.jinja"),
    ("broken", "broken.jinja"), ("missing_file", "does_not_exist.jinja"))}

resilient_mock = SoarMock
config_data = ""           # each class sets the app.config of its transport (see transport_app_config)


@pytest.fixture(scope="module")
def apis(tls_pki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("http-send-email2")
    setups = {transport: MailApiSetup(transport, tls_pki, folder, *ports) for transport, ports in PORTS.items()}
    for setup in setups.values():
        setup.__enter__()
    yield setups
    for setup in setups.values():
        setup.__exit__(None, None, None)


@pytest.fixture(scope="class", autouse=True)
def transport_app_config(request, apis):
    """pytest-resilient-circuits reads a class's app.config from config_data when the class's app starts."""
    transport = getattr(request.cls, "transport", None)
    if transport is None:
        yield
        return
    values = dict(apis[transport].values, smtp_password=smtp_cases.SECRET_PASSWORD)
    request.module.config_data = app_config(1, templates=TEMPLATES, **values)
    yield
    request.module.config_data = ""


@pytest.fixture
def server(request, apis):
    """The API of the class's transport, with nothing received yet, and the SOAR call log empty."""
    api_server = apis[request.cls.transport].server
    api_server.messages.clear()
    api_server.faults.clear()
    SoarMock.calls.clear()
    return api_server


class HttpCases(smtp_cases.TestSendEmail2):
    transport = None
    # an SMTP server refuses recipients one by one, and can be down on its port: SMTP cases only
    test_one_refused_recipient_is_reported_and_the_rest_get_the_mail = None
    test_every_recipient_refused_fails = None
    test_server_down_is_a_failed_result_with_reason = None
    # refused before a transport is chosen: the SMTP module's run covers them
    test_invalid_inputs_raise_a_clear_error_and_send_nothing = None
    test_header_injection_is_refused_for_every_header_input = None
    test_sandbox_blocks_python_internals = None
    test_template_helper_reaches_no_config_client_or_secret = None

    def test_the_mail_went_through_the_api(self, circuits_app, server):
        result = smtp_cases.send(circuits_app, mail_to="alice@example.com", mail_body="x")
        assert result["success"] is True, result["reason"]
        assert server.messages[0].auth_user == "soar@example.com" and server.requests[-1][0] == "POST"


class TestSendEmail2OverGraph(HttpCases):
    transport = "graph"


class TestSendEmail2OverGmailApi(HttpCases):
    transport = "gmail_api"


class TestRichTextOverGraph(smtp_cases.TestRichTextFieldValues):
    transport = "graph"


class TestRichTextOverGmailApi(smtp_cases.TestRichTextFieldValues):
    transport = "gmail_api"
