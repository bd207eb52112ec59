# -*- coding: utf-8 -*-
"""payload_samples/<function>/ (what `resilient-sdk package` puts into the App Host export) match the functions.

The samples are documentation SOAR shows to playbook authors, so they must have the shape the functions really
return: each function is run end to end (mock SOAR, real SMTP server) and its payload compared with the sample.
"""

import json
import os

import pytest

from tests.support.function_runner import app_config, call_function
from tests.support.smtp_server import free_port
from tests.support.soar_mock import INCIDENT_ID, SoarMock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(ROOT, "payload_samples")
EXPORT_RES = os.path.join(ROOT, "fn_outbound_email", "util", "data", "export.res")
FUNCTIONS = ("send_email", "send_email2")
SMTP_PORT = free_port()

config_data = app_config(SMTP_PORT, from_email_address="SOAR <soar@example.com>")

resilient_mock = SoarMock


def read_sample(function_name, file_name):
    with open(os.path.join(SAMPLES, function_name, file_name), encoding="utf-8") as sample:
        return json.load(sample)


def shape(value):
    """The JSON structure of a value: dict keys and element types, with the values themselves left out."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string"}[type(value)]


@pytest.mark.parametrize("function_name", FUNCTIONS)
@pytest.mark.parametrize("file_name", ["output_json_example.json", "output_json_schema.json",
                                       "mock_json_expectation_success.json", "mock_json_expectation_fail.json"])
def test_every_sample_file_is_non_empty_json(function_name, file_name):
    # resilient-sdk validate rejects a missing, invalid or empty example or schema
    assert read_sample(function_name, file_name)


@pytest.mark.parametrize("function_name", FUNCTIONS)
def test_schema_is_the_one_resilient_sdk_derives_from_the_example(function_name):
    pytest.importorskip("resilient_sdk", reason="resilient-sdk is not installed (pip install '.[test]')")
    import importlib.resources  # noqa: F401  (resilient_sdk.util.constants uses it without importing it)
    from resilient_sdk.util import constants
    from resilient_sdk.util.sdk_genson_overwrites import CustomSchemaBuilder, main_genson_builder_overwrites

    # the same steps as `resilient-sdk codegen --gather-results`
    builder = CustomSchemaBuilder(schema_uri=constants.CODEGEN_JSON_SCHEMA_URI)
    main_genson_builder_overwrites(builder)
    builder.add_object(read_sample(function_name, "output_json_example.json"))
    assert read_sample(function_name, "output_json_schema.json") == json.loads(builder.to_json())


@pytest.mark.parametrize("function_name", FUNCTIONS)
def test_example_inputs_are_inputs_of_the_function_in_export_res(function_name):
    if not os.path.isfile(EXPORT_RES):
        pytest.skip("fn_outbound_email/util/data/export.res is not built yet")
    with open(EXPORT_RES, encoding="utf-8") as export:
        definition = json.load(export)
    function = next(fn for fn in definition["functions"] if fn["name"] == function_name)
    input_uuids = {item["content"] for item in function["view_items"]}
    input_names = {field["name"] for field in definition["fields"] if field["uuid"] in input_uuids}
    example_inputs = set(read_sample(function_name, "output_json_example.json")["inputs"])
    assert example_inputs and example_inputs <= input_names


def test_send_email2_payload_has_the_sample_shape(circuits_app, smtp_server):
    payload = call_function(circuits_app, "send_email2", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "analyst@example.com", "mail_bcc": "soc-archive@example.com",
        "mail_subject": "Sample shape", "mail_inline_template": "<p>Incident {{ incident.id }}</p>",
        "mail_attachments": "report.txt", "mail_importance": "high", "mail_merge_body": False,
    })
    example = read_sample("send_email2", "output_json_example.json")
    assert payload["success"] is True
    assert shape(payload["content"]) == shape(example["content"])
    assert set(payload) == set(example)
    assert set(payload["metrics"]) == set(example["metrics"])


def test_send_email_payload_has_the_sample_shape(circuits_app, smtp_server):
    payload = call_function(circuits_app, "send_email", {
        "mail_incident_id": INCIDENT_ID, "mail_to": "analyst@example.com", "mail_subject": "Sample shape",
        "mail_body_html": "<p>Incident {{ incident.id }}</p>", "mail_attachments": "report.txt",
    })
    example = read_sample("send_email", "output_json_example.json")
    assert payload["success"] is True
    assert shape(payload["content"]) == shape(example["content"])
    assert set(payload) == set(example)
    assert set(payload["metrics"]) == set(example["metrics"])
