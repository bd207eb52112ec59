# -*- coding: utf-8 -*-
"""SOAR misbehaving (HTTP errors, bodies that are not JSON, a missing incident) and how the app reads SOAR:
send_email2 through pytest-resilient-circuits with a mock SOAR (tests/support/soar_mock.FaultSoarMock), mail to a real
SMTP server on 127.0.0.1.

Every fault ends as success false with a reason naming what could not be read, and nothing is sent; the
attachment list is read once, downloads overlap (4 at a time) and come back in the list's order, and a
template reading one data table twice fetches it once.
"""

import http.server
import os
import threading
import time

import pytest

from tests.support.function_runner import app_config, send_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import (BAD_LIST_INCIDENT_IDS, BROKEN_ATTACHMENT_ID, INCIDENT_ID, MISSING_INCIDENT_ID,
                                     PARALLEL_INCIDENT_ID, SLOW_INCIDENT_ID, FaultSoarMock)

SMTP_PORT = free_port()
config_data = app_config(SMTP_PORT, from_email_address="soar@example.com")
resilient_mock = FaultSoarMock


def send(circuits_app, **inputs):
    return send_function(circuits_app, "send_email2", {"mail_to": "alice@example.com"}, **inputs)


def rest_calls(path_part):
    return [path for _, path in FaultSoarMock.calls if path_part in path]


def test_an_attachment_download_answering_500_is_a_result_naming_the_attachment(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_body="files", mail_attachments="report.txt, broken.bin")
    assert result["success"] is False
    assert "Attachment 'broken.bin' (id {0}) of incident {1}".format(BROKEN_ATTACHMENT_ID, INCIDENT_ID) in \
        result["reason"]
    assert "HTTP 500" in result["reason"] and "<html>" not in result["reason"]
    assert server.messages == []


def test_a_missing_incident_is_a_result_without_retries(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_incident_id=MISSING_INCIDENT_ID, mail_inline_template="{{ incident.name }}")
    assert result["success"] is False
    assert result["reason"] == "Incident {0} could not be read from SOAR: HTTP 404 Not Found".format(
        MISSING_INCIDENT_ID)
    # resilient's client would have retried 5 times over about 30 s; a 404 is answered at once
    assert len(rest_calls("/incidents/{0}?".format(MISSING_INCIDENT_ID))) == 1
    assert server.messages == []


def test_a_soar_call_timing_out_is_a_result_naming_what_was_read(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_incident_id=SLOW_INCIDENT_ID, mail_body="files", mail_attachments="*")
    assert result["success"] is False
    assert result["reason"] == ("The attachment list of incident {0} could not be read from SOAR: ReadTimeout: "
                                "Read timed out. (read timeout=60)".format(SLOW_INCIDENT_ID))
    assert server.messages == []


def test_a_data_table_answer_that_is_not_json_is_a_result_naming_the_table(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_inline_template="{{ template_helper.get_datatable('broken_table', incident.id) }}")
    assert result["success"] is False
    assert result["reason"].startswith(
        "Data table 'broken_table' of incident {0} could not be read from SOAR: the answer is not valid JSON".format(
            INCIDENT_ID)), result["reason"]
    assert server.messages == []


@pytest.mark.parametrize("table", ["../users", "ioc_table/../../users", "IOC", "1table", "ioc table"])
def test_a_data_table_name_must_be_an_api_name(circuits_app, server, fault_soar, table):
    result = send(circuits_app, mail_inline_template="{{{{ template_helper.get_datatable({0!r}, incident.id) }}}}"
                  .format(table))
    assert result["success"] is False
    assert "Data table name {0!r} is not a SOAR API name".format(table) in result["reason"]
    assert "mail_inline_template" in result["reason"]
    assert not rest_calls("table_data") and not rest_calls("/types/")     # nothing reached SOAR
    assert server.messages == []


def test_a_template_reading_a_table_twice_fetches_it_once(circuits_app, server, fault_soar):
    template = ("{{ template_helper.get_datatable_value_array(incident.id, 'ioc_table', 'ioc') }}|"
                "{{ template_helper.get_datatable('ioc_table', incident.id, html=False) | length }}|"
                "{{ template_helper.get_datatable('ioc_table', incident.id) | length > 0 }}")
    result = send(circuits_app, mail_inline_template=template)
    assert result["success"] is True, result["reason"]
    assert server.messages[0].message.get_content().strip() == "evil.example, <b>x</b>.example|2|True"
    assert len(rest_calls("/table_data/ioc_table")) == 1


def test_attachments_are_listed_once_and_downloaded_four_at_a_time_in_order(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_incident_id=PARALLEL_INCIDENT_ID, mail_body="parts", mail_attachments="*")
    assert result["success"] is True, result["reason"]
    assert len(rest_calls("/attachments/query")) == 1
    # the first four downloads wait for each other in the mock: one at a time they could not have finished
    assert FaultSoarMock.in_flight_peak == 4
    assert sorted(FaultSoarMock.downloads) == list(range(600, 606))
    parts = list(server.messages[0].message.iter_attachments())
    assert [part.get_filename() for part in parts] == ["part{0}.txt".format(n) for n in range(6)]
    assert [part.get_content() for part in parts] == ["part{0}\n".format(n) for n in range(6)]
    assert result["content"]["attachments"]["sent"] == ["part{0}.txt".format(n) for n in range(6)]


@pytest.mark.parametrize("shape, problem", [
    ("a list", "the answer is an array, not an object"),
    ("an entry without id", "entry 1 ('report.txt') has no id"),
    ("an id that is not a number", "entry 1 ('report.txt') has an id that is not a number: 'abc'"),
    ("an entry that is not an object", "entry 1 is a string, not an object"),
])
def test_an_attachment_list_of_another_shape_is_a_result_naming_it(circuits_app, server, fault_soar, shape, problem):
    incident_id = BAD_LIST_INCIDENT_IDS[shape]
    result = send(circuits_app, mail_incident_id=incident_id, mail_body="files", mail_attachments="report.txt")
    assert result["success"] is False
    assert result["reason"] == ("The attachment list of incident {0} could not be read from SOAR: {1}, which is not "
                                "the shape SOAR answers with".format(incident_id, problem))
    assert FaultSoarMock.downloads == [] and server.messages == []


def test_a_template_error_wins_over_an_attachment_fault_fetched_meanwhile(circuits_app, server, fault_soar):
    result = send(circuits_app, mail_inline_template="{{ incident.name | nosuchfilter }}",
                  mail_attachments="broken.bin")
    assert result["success"] is False
    assert "mail_inline_template" in result["reason"] and "nosuchfilter" in result["reason"]
    assert server.messages == []


@pytest.mark.parametrize("answer", [
    [{"id": 1, "text": "a"}],
    {"data": [{"id": 1, "text": "a"}]},
    {"root_comments": [{"id": 1, "text": "a"}]},
], ids=["list", "paged", "root_comments"])
def test_notes_are_read_from_each_answer_shape_soar_gives(answer):
    from fn_outbound_email.lib.soar.client import SoarClient

    class NotesOnlySoar:                    # SOAR's REST API itself cannot run here: only its answer is given
        base_url = "https://soar.example.invalid"

        def post(self, uri, payload, **kwargs):
            assert "/comments/query" in uri
            return answer

    assert SoarClient(NotesOnlySoar()).get_notes(2314) == [{"id": 1, "text": "a"}]


# --- a download dripped by a real HTTP server --------------------------------------------------------------

SLOWNESS = float(os.environ.get("TEST_SLOWNESS", "1"))
DRIP_DEADLINE = 0.5 * SLOWNESS          # the download deadline for the test (the app's is minutes)


class DrippingSoar(http.server.ThreadingHTTPServer):
    """Answers every GET with a 2,000-byte body, a byte every DRIP_DEADLINE / 20 s, so each read is quick and
    the whole body would take 100 deadlines; it gives up (closing the connection) after 20 deadlines."""

    daemon_threads = True
    BODY_SIZE = 2000

    def __init__(self):
        self.bytes_sent = 0
        self.client_went_away = threading.Event()
        super().__init__(("127.0.0.1", 0), DrippingHandler)


class DrippingHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(DrippingSoar.BODY_SIZE))
        self.end_headers()
        give_up = time.monotonic() + 20 * DRIP_DEADLINE
        try:
            while self.server.bytes_sent < DrippingSoar.BODY_SIZE and time.monotonic() < give_up:
                self.wfile.write(b"d")
                self.wfile.flush()
                self.server.bytes_sent += 1
                time.sleep(DRIP_DEADLINE / 20)
        except OSError:
            self.server.client_went_away.set()

    def log_message(self, *args):
        pass


def test_a_dripping_download_ends_at_its_deadline(monkeypatch):
    """A real resilient client reading from a real socket: each read is quick, the whole would take minutes."""
    from resilient import SimpleClient

    from fn_outbound_email.lib.soar import download
    from fn_outbound_email.lib.soar.client import SoarClient, SoarError

    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE", DRIP_DEADLINE)
    server = DrippingSoar()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        rest = SimpleClient(org_name="Test", base_url="http://127.0.0.1:{0}".format(server.server_address[1]))
        rest.org_id = 201
        attachment = {"type": "incident", "id": 7, "name": "drip.bin", "size": DrippingSoar.BODY_SIZE}
        with pytest.raises(SoarError) as raised:
            SoarClient(rest).get_attachment_contents(INCIDENT_ID, [attachment], [10 ** 6])
        assert str(raised.value) == ("Attachment 'drip.bin' (id 7) of incident {0} could not be downloaded from "
                                     "SOAR within {1:g} s; nothing was sent".format(INCIDENT_ID, DRIP_DEADLINE))
        assert server.client_went_away.wait(10 * SLOWNESS), "the server kept dripping to the client"
        assert server.bytes_sent < DrippingSoar.BODY_SIZE
    finally:
        server.shutdown()
        server.server_close()
