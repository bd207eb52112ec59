# -*- coding: utf-8 -*-
"""Drop-in replacement: every object of IBM's original app keeps its identity in our export.res.

tests/reference/original_identifiers.json describes the original's export.res (uuids, names, labels, types,
flags, select values). The checks below walk it and look each fact up in our shipped export.res. They also
make sure the build's own copy of those facts (original_identities.json) is derived from this reference.

    python -m tests.dropin.test_original_identities [export.res]   # prints how many identities match
"""

import dataclasses
import io
import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest

from fn_outbound_email.util.customizations import build, identities, soar_objects
from fn_outbound_email.util.customizations import definitions as defs

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference", "original_identifiers.json")
SHARED_REFERENCE = "/work/shared/reference/original_identifiers.json"   # where the reference was first written
RESILIENT = "{http://resilient.ibm.com/bpmn}"


def load_json(path):
    with io.open(path, encoding="utf-8") as source:
        return json.load(source)


def _values(values):
    return [(value["label"], value["uuid"], value["value"], bool(value["default"])) for value in values or []]


def _field_facts(field, keys):
    facts = {key: field.get(key) for key in keys}
    if "required" in keys:
        facts["required"] = field.get("required")     # "always" or absent (None)
    if "values" in keys:
        facts["values"] = _values(field.get("values"))
    return facts


def _compare(where, expected, actual, keys):
    """One check per key: (where/key, expected, actual)."""
    for key in keys:
        yield "{0}/{1}".format(where, key), expected.get(key), (actual or {}).get(key)


FIELD_KEYS = ("uuid", "export_key", "name", "input_type", "required", "values")


def _field_checks(where, original, ours, keys=FIELD_KEYS):
    yield from _compare(where, _field_facts(original, keys), _field_facts(ours, keys) if ours else None, keys)


def _form_order(items):
    return [item.get("name", "<html>") for item in items]


def _view_order(playbook, fields_by_uuid):
    return [fields_by_uuid[item["content"]]["name"] if item["element"] == "field_uuid" else "<html>"
            for item in playbook["manual_settings"]["view_items"]]


def identity_checks(reference, export):
    """Every identity fact of the reference, as (what, original's value, our value)."""
    destinations = {item["programmatic_name"]: item for item in export.get("message_destinations") or []}
    for original in reference["message_destinations"]:
        yield from _compare("message_destination " + original["programmatic_name"], original,
                            destinations.get(original["programmatic_name"]),
                            ("uuid", "name", "export_key", "destination_type", "expect_ack"))

    fields = {item["uuid"]: item for item in export.get("fields") or []}
    fields_by_key = {item["export_key"]: item for item in export.get("fields") or []}
    functions = {item["name"]: item for item in export.get("functions") or []}
    for original in reference["functions"]:
        ours = functions.get(original["name"])
        where = "function " + original["name"]
        yield from _compare(where, original, ours, ("uuid", "export_key", "display_name", "destination_handle"))
        our_inputs = [fields.get(item["content"], {}).get("name") for item in (ours or {}).get("view_items", [])]
        kept = [name for name in our_inputs if name in {field["name"] for field in original["inputs"]}]
        yield where + "/inputs in order", [field["name"] for field in original["inputs"]], kept
        for field in original["inputs"]:
            yield from _field_checks("{0} input {1}".format(where, field["name"]), field,
                                     fields_by_key.get(field["export_key"]))

    for original in reference["fields_not_in_function_view_items"]:
        yield from _field_checks("field " + original["export_key"], original, fields_by_key.get(original["export_key"]),
                                 FIELD_KEYS + ("text", "type_id", "prefix", "internal", "read_only"))

    tables = {item["type_name"]: item for item in export.get("types") or []}
    for original in reference["datatables"]:
        ours = tables.get(original["type_name"])
        where = "datatable " + original["type_name"]
        yield from _compare(where, original, ours, ("uuid", "export_key", "display_name", "type_id", "parent_types"))
        columns = (ours or {}).get("fields") or {}
        for column in original["columns"]:
            yield from _field_checks("{0} column {1}".format(where, column["name"]), column,
                                     columns.get(column["name"]),
                                     FIELD_KEYS + ("text", "order", "width", "blank_option", "chosen", "rich_text",
                                                   "type_id"))

    playbooks = {item["name"]: item for item in export.get("playbooks") or []}
    scripts = {item["name"]: item for item in export.get("scripts") or []}
    for original in reference["scripts"]:
        owner = playbooks.get(original["playbook_handle"]) if original["playbook_handle"] else None
        pool = {item["name"]: item for item in owner["local_scripts"]} if owner else scripts
        where = "script {0} {1}".format(original["scope"], original["name"])
        yield from _compare(where, original, pool.get(original["name"]),
                            ("uuid", "export_key", "programmatic_name", "object_type", "language", "playbook_handle",
                             "enabled"))

    for original in reference["playbooks"]:
        ours = playbooks.get(original["name"])
        where = "playbook " + original["name"]
        yield from _compare(where, original, ours, ("uuid", "export_key", "display_name", "object_type",
                                                    "activation_type", "status", "type", "deployment_id",
                                                    "field_type_handle"))
        if ours is None:
            continue
        fields_type = ours["fields_type"]
        yield from _compare(where + " input type", original["fields_type"], fields_type,
                            ("type_name", "uuid", "type_id", "parent_types"))
        yield from _compare(where + " tag", original["tag"], ours["tag"], ("name", "uuid", "type"))
        our_form = fields_type["fields"]
        order = _view_order(ours, {field["uuid"]: field for field in our_form.values()})
        wanted = _form_order(original["form"])
        kept = [name for name in order if name in wanted]
        yield where + " form in view order", wanted, kept
        for item in original["form"]:
            if "name" in item:
                yield from _field_checks("{0} input {1}".format(where, item["name"]), item,
                                         our_form.get(item["name"]), FIELD_KEYS + ("text", "blank_option"))
        root = ET.fromstring(ours["content"]["xml"].encode("utf-8"))
        (function_element,) = root.iter(RESILIENT + "function")
        node = json.loads(function_element.text)
        (call,) = original["function_calls"]
        yield where + " function uuid", call["function_uuid"], function_element.get("uuid")
        yield where + " result_name", call["result_name"], node["result_name"]
        for static in call["static_inputs_with_value"]:
            value = node["inputs"].get(static["uuid"], {}).get("static_input", {}).get("select_value")
            yield "{0} static input {1}".format(where, static["name"]), static["select_value_uuid"], value
        function_fields = {field["name"]: field["uuid"] for field in export["fields"]
                           if field["export_key"].startswith("__function/")}
        yield (where + " empty static inputs", call["static_inputs_empty"],
               [name for name in call["static_inputs_empty"] if function_fields.get(name) in node["inputs"]])
        script_uuids = [element.get("uuid") for element in root.iter(RESILIENT + "script")]
        yield where + " script tasks", [task["script_uuid"] for task in original["script_tasks"]], script_uuids
        yield (where + " local scripts", [(item["name"], item["uuid"]) for item in original["local_scripts"]],
               [(item["name"], item["uuid"]) for item in ours["local_scripts"]])


def mismatches(reference, export):
    checks = list(identity_checks(reference, export))
    return len(checks), [(what, expected, actual) for what, expected, actual in checks if expected != actual]


def test_every_identity_of_the_original_is_kept_in_export_res():
    total, wrong = mismatches(load_json(REFERENCE), load_json(build.EXPORT_RES))
    print("identities matching the original: {0} of {1}".format(total - len(wrong), total))
    assert total > 500          # the walk really visits the reference
    assert wrong == []


def test_the_checks_catch_a_changed_identity():
    reference, export = load_json(REFERENCE), load_json(build.EXPORT_RES)
    playbook = [item for item in export["playbooks"] if item["name"] == "outbound_email_reply_to_message"][0]
    playbook["fields_type"]["fields"]["mail_template_select"]["values"][0]["uuid"] = "00000000-0000-4000-8000-0"
    playbook["display_name"] = "Outbound Email Reply to Message"
    [field for field in export["fields"] if field["name"] == "mail_to"][0]["required"] = "always"
    _, wrong = mismatches(reference, export)
    assert sorted(what for what, _, _ in wrong) == [
        "function send_email input mail_to/required", "function send_email2 input mail_to/required",
        "playbook outbound_email_reply_to_message input mail_template_select/values",
        "playbook outbound_email_reply_to_message/display_name"]


def test_objects_of_ours_alone_have_stable_uuids_of_their_own():
    reference, export = load_json(REFERENCE), load_json(build.EXPORT_RES)
    original_uuids = {value for key, value in _walk(reference) if key in ("uuid", "select_value_uuid")}
    (activity,) = [field for field in export["fields"]
                   if field["export_key"] == "actioninvocation/mail_template_select"]
    assert activity["uuid"] == soar_objects.stable_uuid("field/actioninvocation/mail_template_select")
    reply = [item for item in export["playbooks"] if item["name"] == "outbound_email_reply_to_message"][0]
    extra_to = reply["fields_type"]["fields"]["mail_to"]
    assert extra_to["uuid"] == soar_objects.stable_uuid("playbook/outbound_email_reply_to_message/input/mail_to")
    assert (extra_to["text"], extra_to.get("required")) == ("To", None)      # an optional extra
    ours_alone = {value for key, value in _walk(export) if key == "uuid" and value} - original_uuids
    assert activity["uuid"] in ours_alone and extra_to["uuid"] in ours_alone
    # the activity field and 6 extra playbook inputs (reply: mail_to, mail_encryption_key; incident HTML2:
    # mail_merge_body; task HTML2: mail_subject, mail_body, mail_merge_body), nothing else
    assert len(ours_alone) == 7


def test_build_refuses_definitions_that_drop_or_rename_an_original_input(monkeypatch):
    reply = [item for item in defs.PLAYBOOKS if item.name == "outbound_email_reply_to_message"][0]
    without_from = dataclasses.replace(reply, inputs=tuple(item for item in reply.inputs
                                                           if getattr(item, "name", None) != "mail_from"))
    monkeypatch.setattr(defs, "PLAYBOOKS", tuple(without_from if item is reply else item for item in defs.PLAYBOOKS))
    with pytest.raises(ValueError, match="outbound_email_reply_to_message must keep the original's"):
        build.build_document()


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_reference_copy_is_the_shared_reference():
    with open(REFERENCE, "rb") as copy:
        ours = copy.read()
    # where the shared reference exists (the development machine), the copy is byte-identical to it;
    # elsewhere (CI) the copy is checked against the facts it carries about itself
    for path in [SHARED_REFERENCE] if os.path.isfile(SHARED_REFERENCE) else []:
        with open(path, "rb") as shared:
            assert shared.read() == ours, path
    reference = json.loads(ours.decode("utf-8"))
    assert reference["provenance"]["repo"] == "ibmresilient/resilient-community-apps"
    counts = reference["counts"]
    assert (len(reference["functions"]), len(reference["playbooks"]), len(reference["datatables"][0]["columns"])) == (
        counts["functions"], counts["playbooks"], counts["datatable_columns"])
    assert sum(len(playbook["form"]) - len([item for item in playbook["form"] if "name" not in item])
               for playbook in reference["playbooks"]) == counts["playbook_input_fields"]


def test_build_identities_are_derived_from_the_reference():
    with io.open(identities.ORIGINAL_IDENTITIES, encoding="utf-8") as committed:
        assert committed.read() == identities.render(load_json(REFERENCE)), (
            "original_identities.json is stale; rewrite it with: python -m "
            "fn_outbound_email.util.customizations.identities tests/reference/original_identifiers.json")


if __name__ == "__main__":
    export_path = sys.argv[1] if len(sys.argv) > 1 else build.EXPORT_RES
    checked, failed = mismatches(load_json(REFERENCE), load_json(export_path))
    for what, expected, actual in failed:
        print("MISMATCH {0}: original {1!r}, ours {2!r}".format(what, expected, actual))
    print("identities matching the original: {0} of {1}".format(checked - len(failed), checked))
