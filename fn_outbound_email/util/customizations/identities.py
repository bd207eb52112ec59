# -*- coding: utf-8 -*-
"""The identities of IBM's original Outbound Email app, which our export.res keeps (drop-in replacement).

An administrator imports our export.res over the original's objects; SOAR matches them by uuid and
programmatic name, so every object the original has keeps its uuid, name, labels, types, flags and select
values (with their numeric value ids) here. original_identities.json holds exactly those facts, derived from a
description of the original's export.res (tests/reference/original_identifiers.json):

    python -m fn_outbound_email.util.customizations.identities tests/reference/original_identifiers.json

build.py takes every identity from this file and nothing else; objects the original lacks get stable uuid5s.
"""

import argparse
import io
import json
import os
import sys

ORIGINAL_IDENTITIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "original_identities.json")
SEPARATOR = {"element": "html"}    # a form's html separator, as the original's view order has it


def _values(values):
    return [{"label": value["label"], "uuid": value["uuid"], "value": value["value"],
             "default": bool(value["default"])} for value in values or []]


def _field(field, *extra):
    """The facts of one field: uuid, type, required flag, select values and the `extra` keys it has."""
    facts = {"uuid": field["uuid"], "input_type": field["input_type"], "required": field.get("required") == "always",
             "values": _values(field.get("values"))}
    facts.update((key, field[key]) for key in extra if key in field)
    return facts


def _form_item(item):
    if item.get("element") == "html":
        return dict(SEPARATOR)
    return dict(_field(item, "text", "blank_option"), name=item["name"])


def derive(reference):
    """The identities our build needs, from the reference description of the original's export.res."""
    provenance = reference.get("provenance") or {}
    function_inputs = {}
    for function in reference["functions"]:
        for field in function["inputs"]:
            function_inputs.setdefault(field["name"], _field(field))
    scripts = {script["name"]: {"uuid": script["uuid"], "programmatic_name": script["programmatic_name"],
                                "playbook": script.get("playbook_handle")} for script in reference["scripts"]}
    playbooks = {}
    for playbook in reference["playbooks"]:
        (call,) = playbook["function_calls"]
        playbooks[playbook["name"]] = {
            "uuid": playbook["uuid"], "display_name": playbook["display_name"],
            "object_type": playbook["object_type"],
            "inputs_type_uuid": playbook["fields_type"]["uuid"],
            "inputs_type_id": playbook["fields_type"]["field_type_id_of_inputs"][0],
            "tag_uuid": playbook["tag"]["uuid"],
            "form": [_form_item(item) for item in playbook["form"]],
            "function": call["function_name"], "result_name": call["result_name"],
            "static_inputs": {item["name"]: item["label"] for item in call["static_inputs_with_value"]},
            "empty_static_inputs": list(call["static_inputs_empty"]),
        }
    return {
        "source": {key: provenance[key] for key in ("repo", "path", "commit", "sha256") if key in provenance},
        "message_destinations": {destination["programmatic_name"]: {"uuid": destination["uuid"]}
                                 for destination in reference["message_destinations"]},
        "functions": {function["name"]: {"uuid": function["uuid"], "display_name": function["display_name"],
                                         "inputs": [field["name"] for field in function["inputs"]]}
                      for function in reference["functions"]},
        "function_inputs": function_inputs,
        "incident_fields": {field["name"]: _field(field, "text", "prefix")
                            for field in reference["fields_not_in_function_view_items"]
                            if field["type_id"] == 0 and not field.get("internal")},
        "datatables": {table["type_name"]: {
            "uuid": table["uuid"], "display_name": table["display_name"],
            "columns_type_id": table["columns"][0]["type_id"],
            "columns": [dict(_field(column, "text", "width", "blank_option", "chosen", "rich_text"),
                             name=column["name"]) for column in sorted(table["columns"], key=lambda c: c["order"])],
        } for table in reference["datatables"]},
        "scripts": scripts,
        "playbooks": playbooks,
    }


def render(reference):
    return json.dumps(derive(reference), indent=2, sort_keys=True) + "\n"


_LOADED = {}


def load(path=ORIGINAL_IDENTITIES):
    """The identities of the original's objects (original_identities.json)."""
    if path not in _LOADED:
        with io.open(path, encoding="utf-8") as source:
            _LOADED[path] = json.load(source)
    return _LOADED[path]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Derive original_identities.json from the reference description")
    parser.add_argument("reference", help="original_identifiers.json (a description of the original's export.res)")
    args = parser.parse_args(argv)
    with io.open(args.reference, encoding="utf-8") as source:
        text = render(json.load(source))
    with io.open(ORIGINAL_IDENTITIES, "w", encoding="utf-8", newline="\n") as target:
        target.write(text)
    print("wrote {0}".format(ORIGINAL_IDENTITIES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
