# -*- coding: utf-8 -*-
"""Resource limits of a send: template render time, output and value sizes, and the attachment budget.

send_email2 runs through pytest-resilient-circuits with the mock SOAR (tests/support/soar_mock.FaultSoarMock) and
sends to a real SMTP server on 127.0.0.1. The app.config limits are tiny so that every limit is reached in
a fraction of a second: without them each template below ran for more than 15 s or took hundreds of MB.
"""

import pytest

from fn_outbound_email.lib.errors import TemplateError
from fn_outbound_email.lib.templates.limits import TemplateLimits
from fn_outbound_email.lib.templates.render import TemplateRenderer
from tests.support.function_runner import app_config, send_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import (BIG_ATTACHMENT_SIZE, BIG_INCIDENT_ID, INCIDENT_ID, MIXED_INCIDENT_ID,
                                     UNLISTED_SIZE_CONTENT, UNLISTED_SIZES_INCIDENT_ID, FaultSoarMock)

SMTP_PORT = free_port()
TIMEOUT = 0.3
MAX_OUTPUT = 20000
MAX_MESSAGE_SIZE = 40000
config_data = app_config(SMTP_PORT, from_email_address="soar@example.com", template_timeout=TIMEOUT,
                         template_max_output=MAX_OUTPUT, max_message_size=MAX_MESSAGE_SIZE)
resilient_mock = FaultSoarMock


def send(circuits_app, **inputs):
    return send_function(circuits_app, "send_email2", {"mail_to": "alice@example.com"}, **inputs)


# --- templates ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    # a loop over a list makes no call at all: the compiled loop body checks the deadline itself
    "{% set l = range(10000) | list %}{% for i in l %}{% for j in l %}{% endfor %}{% endfor %}",
])
def test_a_template_running_past_its_deadline_is_stopped(circuits_app, server, fault_soar, template):
    result = send(circuits_app, mail_inline_template=template)
    assert result["success"] is False
    assert result["reason"] == ("Template 'mail_inline_template' on line 1 was stopped: it ran longer than "
                                "template_timeout ({0:g} s)".format(TIMEOUT))
    assert server.messages == []


@pytest.mark.parametrize("template, what", [
    ("{{ 'a'*10**8 }}{{ 'b'*10**8 }}", "a repeated value would be 100000000 characters"),
    ("{{ [0] * 10**8 }}", "a repeated value would be 100000000 characters"),
    ("{{ '{0:>300000000}'.format(1) }}", "a formatted value would be 300000014 characters"),
    ("{{ '{0:.300000000f}'.format(1.5) }}", "a formatted value would be 300000015 characters"),
    ("{{ '{0:>{1}}'.format(1, 300000000) }}", "a replacement field inside a format spec is not allowed"),
    ("{{ '%300000000d' % 1 }}", "a formatted value would be 300000011 characters"),
    ("{{ '%300000000d' | format(1) }}", "a formatted value would be 300000011 characters"),
    ("{{ '%*d' % (300000000, 1) }}", "a '*' width or precision in a % format is not allowed"),
    ("{{ 'x'.center(10**9) }}", "a padded string would be 1000000000 characters"),
    ("{{ 'x' | center(10**9) }}", "a centered string would be 1000000000 characters"),
    ("{{ ('ab' * 5000) | replace('a', 'x' * 5000) }}", "a replaced string would be 25005000 characters"),
    ("{{ 2 ** 100000000 }}", "a number would have about 200000000 bits"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "a joined value would be 32768 characters"),
    ("{% set l = [1] %}{% for i in range(30) %}{% do l.extend(l) %}{% endfor %}",
     "a list, dict or set would be 32768 characters"),
])
def test_one_expression_cannot_make_a_huge_value(circuits_app, server, fault_soar, template, what):
    result = send(circuits_app, mail_inline_template=template)
    assert result["success"] is False
    assert result["reason"].startswith("Template 'mail_inline_template' on line 1 was stopped: " + what), \
        result["reason"]
    assert server.messages == []


def test_output_past_the_cap_is_stopped_while_rendering(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_inline_template="{% for i in range(100000) %}0123456789{% endfor %}")
    assert result["success"] is False
    assert result["reason"] == ("Template 'mail_inline_template' was stopped: its output grew past "
                                "template_max_output ({0} characters)".format(MAX_OUTPUT))
    assert server.messages == []


def test_ordinary_templates_are_not_limited(circuits_app, server, fault_soar):
    template = ("{{ 'ok {0:>5}|{1:.2f}'.format(1, 2.5) }}|{{ '%-4s|%03d' % ('a', 7) }}|{{ 'ab' * 3 }}|{{ 2 ** 10 }}|"
                "{{ [1, 2] + [3] }}|{{ 'x' | center(5) }}|{{ ['a', 'b'] | join(',') }}|{{ 'abc' | replace('b', '-') }}|"
                "{{ '%s!' | format('hi') }}|{% for i in range(3) %}{{ i }}{% endfor %}")
    result = send(circuits_app, mail_inline_template=template)
    assert result["success"] is True, result["reason"]
    assert server.messages[0].message.get_content().strip() == \
        "ok     1|2.50|a   |007|ababab|1024|[1, 2, 3]|  x  |a,b|a-c|hi!|012"


def test_the_sandbox_range_limit_still_holds():
    with pytest.raises(TemplateError) as raised:
        TemplateRenderer().render("{{ range(100001) | list | length }}", {})
    assert "MAX_RANGE" in str(raised.value)


def test_limits_are_per_render_and_per_call():
    renderer = TemplateRenderer()
    tight = TemplateLimits(timeout=5, max_output=10)
    with pytest.raises(TemplateError) as raised:
        renderer.render("{{ 'x' * 11 }}", {}, name="tight.jinja", limits=tight)
    assert "tight.jinja" in str(raised.value) and "template_max_output (10)" in str(raised.value)
    assert renderer.render("{{ 'x' * 11 }}", {}) == "x" * 11          # the defaults are 5 MiB


# --- attachments -------------------------------------------------------------------------------------------

def test_attachments_that_cannot_fit_are_refused_before_any_download(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_incident_id=BIG_INCIDENT_ID, mail_body="captures", mail_attachments="*")
    assert result["success"] is False
    reason = result["reason"]
    assert reason.startswith("The attachments do not fit in max_message_size ({0} bytes): base64-encoded they need "
                             "about {1} bytes".format(MAX_MESSAGE_SIZE, 12 * BIG_ATTACHMENT_SIZE * 4 // 3)), reason
    assert "'capture00.pcap' ({0} bytes)".format(BIG_ATTACHMENT_SIZE) in reason and "'capture11.pcap'" in reason
    assert "Nothing was downloaded or sent" in reason
    assert FaultSoarMock.downloads == []
    assert server.messages == []


def test_the_running_total_names_the_attachments_from_where_it_passes_the_limit(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_incident_id=MIXED_INCIDENT_ID, mail_body="files", mail_attachments="*")
    assert result["success"] is False
    reason = result["reason"]
    assert "go past the limit" in reason and "'huge.pcap' ({0} bytes), 'small3.txt' (10 bytes)".format(
        BIG_ATTACHMENT_SIZE) in reason
    assert "small1.txt" not in reason and "small2.txt" not in reason
    assert FaultSoarMock.downloads == [] and server.messages == []
    # the two small ones alone fit, and are sent
    result = send(circuits_app, mail_incident_id=MIXED_INCIDENT_ID, mail_body="files",
                  mail_attachments="small1.txt, small3.txt")
    assert result["success"] is True, result["reason"]


def test_a_download_larger_than_its_listed_size_stops_at_the_budget(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_body="files", mail_attachments="undersized.bin")
    assert result["success"] is False
    assert result["reason"].startswith("Attachment 'undersized.bin' (id 36) of incident {0} is larger than the "
                                       "{1} bytes left of max_message_size".format(INCIDENT_ID,
                                                                                    MAX_MESSAGE_SIZE * 3 // 4))
    assert server.messages == []


def test_downloads_without_listed_sizes_share_one_budget(circuits_app, server, fault_soar):
    """Each of the 12 fits on its own (20,000 of the 30,000 bytes left); together they must not be held."""
    room = MAX_MESSAGE_SIZE * 3 // 4
    assert len(UNLISTED_SIZE_CONTENT) < room < 2 * len(UNLISTED_SIZE_CONTENT)
    result = send(circuits_app, mail_incident_id=UNLISTED_SIZES_INCIDENT_ID, mail_body="files", mail_attachments="*")
    assert result["success"] is False
    assert "and the attachments downloaded with it are more than the {0} bytes max_message_size leaves for " \
           "attachments".format(room) in result["reason"], result["reason"]
    assert server.messages == []


def test_a_rest_stand_in_answering_more_than_the_limit_is_refused():
    """Stand-ins without a session (the offline SOAR of `outbound-email demo`) hand over bytes: checked after."""
    from fn_outbound_email.lib.soar.client import SoarClient, SoarError

    class BytesRest:
        base_url, org_id = "https://soar.example.invalid:443", 201

        def get_content(self, uri):
            return b"x" * 10

    attachment = {"type": "incident", "id": 7, "name": "ten.bin", "size": 5}
    with pytest.raises(SoarError) as raised:
        SoarClient(BytesRest()).get_attachment_contents(INCIDENT_ID, [attachment], [5])
    assert "Attachment 'ten.bin' (id 7) of incident {0} is larger than the 5 bytes".format(INCIDENT_ID) in \
        str(raised.value)
    assert SoarClient(BytesRest()).get_attachment_contents(INCIDENT_ID, [attachment], [10]) == [b"x" * 10]
