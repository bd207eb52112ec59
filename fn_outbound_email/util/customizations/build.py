# -*- coding: utf-8 -*-
"""Compose util/data/export.res (and util/customize.py) from definitions.py, original_identities.json and scripts/*.py.

    python -m fn_outbound_email.util.customizations.build           # rewrite export.res and customize.py
    python -m fn_outbound_email.util.customizations.build --check   # exit 1 when either is stale

Every object IBM's original app has takes its uuid, names, labels, types, flags and select values (with their
value ids) from original_identities.json, so that our export.res imports over the original's objects; the build
stops with an error when definitions.py would drop or reorder one of the original's inputs. Objects of ours
alone get uuid5s of fixed names. Ids are counted in definition order, dates are fixed and keys sorted, so a
rebuild without source changes leaves both files byte-identical.

This is also how to restore them after `resilient-sdk codegen --reload`, which rewrites customize.py and
export.res from its own templates and drops the activity field no rule uses (mail_template_select).
"""

import argparse
import io
import itertools
import json
import os
import sys

from fn_outbound_email.util.customizations import definitions as defs
from fn_outbound_email.util.customizations import identities
from fn_outbound_email.util.customizations import soar_objects as so

SCRIPTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")
UTIL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT_RES = os.path.join(UTIL_DIR, "data", "export.res")
CUSTOMIZE_PY = os.path.join(UTIL_DIR, "customize.py")
REBUILD_COMMAND = "python -m fn_outbound_email.util.customizations.build"


def script_text(files):
    """The SOAR script made of scripts/<file> for each of `files`, in order."""
    parts = []
    for name in files:
        with io.open(os.path.join(SCRIPTS_DIR, name), encoding="utf-8") as source:
            parts.append(source.read().strip("\n"))
    return "\n\n\n".join(parts) + "\n"


def check_keeps(original, ours, where):
    """Raise unless `ours` holds every name of `original` in the same order (ours may add names in between)."""
    kept = [name for name in ours if name in original]
    if kept != list(original):
        raise ValueError("{0} must keep the original's {1} in this order; definitions.py gives {2}".format(
            where, list(original), list(ours)))


def _form_key(item):
    """The name of an activation-form item, ours (definitions) or the original's (identities); one key for
    every separator."""
    if isinstance(item, defs.Separator) or (isinstance(item, dict) and "name" not in item):
        return "<separator>"
    return item["name"] if isinstance(item, dict) else item.name


class _Builder(object):
    """Turns the definitions into export objects, numbering ids and new select values in definition order."""

    def __init__(self, original):
        self.original = original
        self._field_ids = itertools.count(1000)
        self._select_values = itertools.count(4001)
        self._script_ids = itertools.count(1)

    def field(self, spec, type_id, export_key, uuid_key, prefix=None, known=None):
        """The field object of `spec`: a Known one from its `known` facts (original_identities.json), an Input of
        ours with the uuid5 of `uuid_key`."""
        if isinstance(spec, defs.Known):
            if known is None:
                raise ValueError("{0}: the original app has no such object".format(export_key))
            values = [so.select_value(value["label"], value["value"], value["uuid"], default=value["default"])
                      for value in known["values"]]
            obj = so.field_object(spec.name, known.get("text", spec.name), known["input_type"], type_id, export_key,
                                  known["uuid"], next(self._field_ids), tooltip=spec.tooltip,
                                  placeholder=spec.placeholder, required=known["required"], values=values,
                                  blank_option=known.get("blank_option", False), prefix=prefix,
                                  rich_text=known.get("rich_text", False), chosen=known.get("chosen", False))
            if "width" in known:
                obj["width"] = known["width"]
            return obj
        values = [so.select_value(label, next(self._select_values), so.stable_uuid("value/{0}/{1}".format(
            export_key, label)), default=(label == spec.default)) for label in spec.choices]
        return so.field_object(spec.name, spec.text, spec.input_type, type_id, export_key, so.stable_uuid(uuid_key),
                               next(self._field_ids), tooltip=spec.tooltip, placeholder=spec.placeholder,
                               required=spec.required, values=values, blank_option=spec.blank_option,
                               prefix=prefix, rich_text=spec.rich_text)

    def function_inputs(self):
        known = self.original["function_inputs"]
        return {spec.name: self.field(spec, so.TYPE_FUNCTION, "__function/" + spec.name,
                                      "field/__function/" + spec.name, known=known.get(spec.name))
                for spec in defs.FUNCTION_INPUTS}

    def functions(self, function_inputs):
        functions = {}
        for fn_id, spec in enumerate(defs.FUNCTIONS, start=1):
            known = self.original["functions"][spec.name]
            check_keeps(known["inputs"], spec.inputs, "function " + spec.name)
            functions[spec.name] = so.function_object(
                spec.name, known["display_name"], spec.description, known["uuid"], fn_id, defs.MESSAGE_DESTINATION,
                [function_inputs[name]["uuid"] for name in spec.inputs])
        return functions

    def datatable(self):
        known = self.original["datatables"][defs.DATATABLE_NAME]
        check_keeps([column["name"] for column in known["columns"]], [spec.name for spec in defs.DATATABLE_COLUMNS],
                    "data table " + defs.DATATABLE_NAME)
        columns_by_name = {column["name"]: column for column in known["columns"]}
        columns = [self.field(spec, known["columns_type_id"], "{0}/{1}".format(defs.DATATABLE_NAME, spec.name),
                              "column/{0}/{1}".format(defs.DATATABLE_NAME, spec.name),
                              known=columns_by_name.get(spec.name))
                   for spec in defs.DATATABLE_COLUMNS]
        return so.datatable_object(defs.DATATABLE_NAME, known["display_name"], known["uuid"], columns)

    def script(self, spec, playbook_name=None):
        known = self.original["scripts"][spec.name]
        if known["playbook"] != playbook_name:
            raise ValueError("script {0!r} belongs to {1} in the original, not {2}".format(
                spec.name, known["playbook"] or "no playbook (global)", playbook_name))
        return so.script_object(spec.name, known["programmatic_name"], spec.description, known["uuid"],
                                next(self._script_ids), spec.object_type, script_text(spec.files),
                                playbook_name=playbook_name)

    def playbook(self, spec, pb_id, functions, function_inputs, global_scripts):
        known = self.original["playbooks"][spec.name]
        if (spec.function, spec.result_name, spec.object_type) != (
                known["function"], known["result_name"], known["object_type"]):
            raise ValueError("playbook {0} must call {1} (result {2}) on {3} as the original does".format(
                spec.name, known["function"], known["result_name"], known["object_type"]))
        pb_uuid = known["uuid"]
        handle = so.playbook_handle(pb_uuid)
        check_keeps([_form_key(item) for item in known["form"]], [_form_key(item) for item in spec.inputs],
                    "the form of playbook " + spec.name)
        known_inputs = {item["name"]: item for item in known["form"] if "name" in item}
        form = []
        for item in spec.inputs:
            if isinstance(item, defs.Separator):
                form.append(item.content)
            else:
                form.append(self.field(item, known["inputs_type_id"], "{0}/{1}".format(handle, item.name),
                                       "playbook/{0}/input/{1}".format(spec.name, item.name),
                                       known=known_inputs.get(item.name)))
        node = so.function_node(self._static_inputs(known, function_inputs), script_text(spec.pre_processing),
                                spec.result_name)
        local_scripts = [self.script(spec.post_script, spec.name)] if spec.post_script_is_local else []
        post = local_scripts[0] if local_scripts else global_scripts[spec.post_script.name]
        function = functions[spec.function]
        steps = [so.FunctionStep(function["display_name"], function["uuid"], node),
                 so.ScriptStep(post["name"], post["uuid"])]
        return so.playbook_object(spec.name, known["display_name"], spec.description, pb_uuid, pb_id,
                                  spec.object_type, form, known["inputs_type_uuid"], known["tag_uuid"], steps,
                                  local_scripts)

    @staticmethod
    def _static_inputs(known, function_inputs):
        """The function node's static inputs, as the original's node has them: a select set to a label (e.g.
        mail_importance normal, which the pre-processing script may override), the others present and empty."""
        inputs = {}
        for name, label in known["static_inputs"].items():
            field = function_inputs[name]
            (value_uuid,) = [value["uuid"] for value in field["values"] if value["label"] == label]
            inputs[field["uuid"]] = so.static_select(value_uuid)
        for name in known["empty_static_inputs"]:
            field = function_inputs[name]
            inputs[field["uuid"]] = so.static_empty(field["input_type"])
        return inputs


def build_document(original=None):
    """The export.res document as a dict."""
    builder = _Builder(original or identities.load())
    function_inputs = builder.function_inputs()
    functions = builder.functions(function_inputs)
    spec = defs.EMAIL_MESSAGE_ID_FIELD
    incident_field = builder.field(spec, so.TYPE_INCIDENT, "incident/" + spec.name, "field/incident/" + spec.name,
                                   prefix="properties", known=builder.original["incident_fields"].get(spec.name))
    table = builder.datatable()
    global_scripts = {}
    for playbook_spec in defs.PLAYBOOKS:
        if not playbook_spec.post_script_is_local and playbook_spec.post_script.name not in global_scripts:
            global_scripts[playbook_spec.post_script.name] = builder.script(playbook_spec.post_script)
    playbooks = [builder.playbook(playbook_spec, pb_id, functions, function_inputs, global_scripts)
                 for pb_id, playbook_spec in enumerate(defs.PLAYBOOKS, start=1)]
    activity = defs.ACTIVITY_TEMPLATE_SELECT
    activity_field = builder.field(activity, so.TYPE_ACTIONINVOCATION, "actioninvocation/" + activity.name,
                                   "field/actioninvocation/" + activity.name)
    destination = so.message_destination_object(
        defs.MESSAGE_DESTINATION, builder.original["message_destinations"][defs.MESSAGE_DESTINATION]["uuid"])
    return so.export_document(list(function_inputs.values()) + [incident_field, activity_field], functions.values(),
                              [destination], [table], global_scripts.values(), playbooks)


def render():
    """export.res as text: sorted keys, 2-space indent, ASCII, trailing newline."""
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


_CUSTOMIZE_PY = '''# -*- coding: utf-8 -*-
"""Generate the SOAR customizations required for fn_outbound_email (as resilient-sdk codegen lays it out).

Written with data/export.res by `{rebuild}`:
edit util/customizations, not this file.
"""

import base64
import io
import os

try:
    from resilient import ImportDefinition
except ImportError:
    # resilient-circuits < v35.0.195
    from resilient_circuits.util import ImportDefinition

RES_FILE = "data/export.res"


def codegen_reload_data():
    """Parameters required reload codegen for the fn_outbound_email package"""
    return {{
        "package": u"fn_outbound_email",
{reload_data}
    }}


def customization_data(client=None):
    """
    Returns a Generator of ImportDefinitions (Customizations).
    Install them using `resilient-circuits customize`

    IBM SOAR Platform Version: {server_version}

    Contents:
{contents}
    """
    res_file = os.path.join(os.path.dirname(__file__), RES_FILE)
    if not os.path.isfile(res_file):
        raise FileNotFoundError("{{0}} not found".format(RES_FILE))

    with io.open(res_file, mode="rt", encoding="utf-8") as export:
        b64_data = base64.b64encode(export.read().encode("utf-8"))
        yield ImportDefinition(b64_data)
'''


def render_customize_py(document=None):
    """util/customize.py: codegen's layout, its reload parameters and contents listing taken from the export."""
    document = document or build_document()
    fields = document["fields"]
    named = {
        "message_destinations": [item["programmatic_name"] for item in document["message_destinations"]],
        "functions": [item["name"] for item in document["functions"]],
        "workflows": [], "actions": [],
        "incident_fields": [item["name"] for item in fields
                            if item["type_id"] == so.TYPE_INCIDENT and not item.get("internal")],
        "incident_artifact_types": [], "incident_types": [],
        "datatables": [item["type_name"] for item in document["types"] if item["type_id"] == so.TYPE_DATATABLE],
        "automatic_tasks": [],
        "scripts": [item["export_key"] for item in document["scripts"]],
        "playbooks": [item["name"] for item in document["playbooks"]],
    }
    reload_lines = []
    for key, names in named.items():
        items = "".join("\n            u\"{0}\",".format(name) for name in sorted(names))
        reload_lines.append("        \"{0}\": [{1}{2}],".format(key, items, "\n        " if names else ""))
    listed = (("Message Destinations", named["message_destinations"]), ("Functions", named["functions"]),
              ("Playbooks", named["playbooks"]), ("Incident Fields", named["incident_fields"]),
              ("Activity Fields", [item["name"] for item in fields if item["type_id"] == so.TYPE_ACTIONINVOCATION]),
              ("Data Tables", named["datatables"]), ("Scripts", named["scripts"]))
    contents = []
    for title, names in listed:
        if names:
            contents.append("    - {0}:".format(title))
            contents.extend("        - {0}".format(name) for name in sorted(names))
    return _CUSTOMIZE_PY.format(rebuild=REBUILD_COMMAND, reload_data="\n".join(reload_lines),
                                server_version=document["server_version"]["version"], contents="\n".join(contents))


def _read(path):
    if not os.path.isfile(path):
        return None
    with io.open(path, encoding="utf-8") as existing:
        return existing.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Compose fn_outbound_email/util/data/export.res and "
                                                 "fn_outbound_email/util/customize.py")
    parser.add_argument("--check", action="store_true", help="only report whether both files are up to date")
    args = parser.parse_args(argv)
    outputs = ((EXPORT_RES, render()), (CUSTOMIZE_PY, render_customize_py()))
    stale = [path for path, text in outputs if _read(path) != text]
    if args.check:
        for path in stale:
            print("{0} is stale; rebuild it with: {1}".format(path, REBUILD_COMMAND))
        if not stale:
            print("{0} and {1} are up to date".format(EXPORT_RES, CUSTOMIZE_PY))
        return 1 if stale else 0
    for path, text in outputs:
        if path in stale:
            with io.open(path, "w", encoding="utf-8", newline="\n") as target:
                target.write(text)
        print("wrote {0}".format(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
