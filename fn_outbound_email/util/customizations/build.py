# -*- coding: utf-8 -*-
"""Compose util/data/export.res from definitions.py and scripts/*.py.

    python -m fn_outbound_email.util.customizations.build           # rewrite export.res
    python -m fn_outbound_email.util.customizations.build --check   # exit 1 when export.res is stale

The output depends on nothing but the sources: uuids are uuid5 of fixed names, ids are counted in definition
order, dates are fixed and keys sorted, so a rebuild without source changes leaves the file byte-identical.
"""

import argparse
import io
import itertools
import json
import os
import sys

from fn_outbound_email.util.customizations import definitions as defs
from fn_outbound_email.util.customizations import soar_objects as so

SCRIPTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")
EXPORT_RES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "export.res")
REBUILD_COMMAND = "python -m fn_outbound_email.util.customizations.build"
FUNCTION_SPECS = {spec.name: spec for spec in defs.FUNCTIONS}

DATATABLE_TYPE_ID = 1001       # the table's (server-assigned) type id its columns refer to
PLAYBOOK_INPUTS_TYPE_ID = 1101  # first playbook's input type id; one per playbook


def script_text(files):
    """The SOAR script made of scripts/<file> for each of `files`, in order."""
    parts = []
    for name in files:
        with io.open(os.path.join(SCRIPTS_DIR, name), encoding="utf-8") as source:
            parts.append(source.read().strip("\n"))
    return "\n\n\n".join(parts) + "\n"


class _Builder(object):
    """Turns the definitions into export objects, numbering ids and select values in definition order."""

    def __init__(self):
        self._field_ids = itertools.count(1000)
        self._select_values = itertools.count(4001)
        self._script_ids = itertools.count(1)

    def field(self, spec, type_id, export_key, field_uuid, prefix=None):
        values = [so.select_value(label, next(self._select_values), so.stable_uuid("value/{0}/{1}".format(
            export_key, label)), default=(label == spec.default)) for label in spec.choices]
        return so.field_object(spec.name, spec.text, spec.input_type, type_id, export_key, field_uuid,
                               next(self._field_ids), tooltip=spec.tooltip, placeholder=spec.placeholder,
                               required=spec.required, values=values, blank_option=spec.blank_option,
                               prefix=prefix, rich_text=spec.rich_text)

    def function_inputs(self):
        return {spec.name: self.field(spec, so.TYPE_FUNCTION, "__function/" + spec.name,
                                      so.stable_uuid("field/__function/" + spec.name))
                for spec in defs.FUNCTION_INPUTS}

    def script(self, spec, playbook_name=None):
        return so.script_object(spec.name, spec.programmatic_name, spec.description,
                                so.stable_uuid("script/" + spec.programmatic_name), next(self._script_ids),
                                spec.object_type, script_text(spec.files), playbook_name=playbook_name)

    def playbook(self, spec, pb_id, functions, function_inputs, global_scripts):
        pb_uuid = so.stable_uuid("playbook/" + spec.name)
        handle = so.playbook_handle(pb_uuid)
        form = [self.field(item, PLAYBOOK_INPUTS_TYPE_ID + pb_id - 1, "{0}/{1}".format(handle, item.name),
                           so.stable_uuid("playbook/{0}/input/{1}".format(spec.name, item.name)))
                for item in spec.inputs]
        function = functions[spec.function]
        static_inputs = {}
        if "mail_importance" in FUNCTION_SPECS[spec.function].inputs:
            # mail_importance is required: the node carries "normal", the pre-processing script may override it
            importance = function_inputs["mail_importance"]
            normal = [value["uuid"] for value in importance["values"] if value["default"]][0]
            static_inputs[importance["uuid"]] = so.static_select(normal)
        node = so.function_node(static_inputs, script_text(spec.pre_processing), spec.result_name)
        local_scripts = [self.script(spec.post_script, spec.name)] if spec.post_script_is_local else []
        post = local_scripts[0] if local_scripts else global_scripts[spec.post_script.name]
        steps = [so.FunctionStep(function["display_name"], function["uuid"], node),
                 so.ScriptStep(post["name"], post["uuid"])]
        return so.playbook_object(spec.name, spec.display_name, spec.description, pb_uuid, pb_id, spec.object_type,
                                  form, so.stable_uuid("playbook/{0}/inputs_type".format(spec.name)),
                                  so.stable_uuid("playbook/{0}/tag".format(spec.name)), steps, local_scripts)


def build_document():
    """The export.res document as a dict."""
    builder = _Builder()
    function_inputs = builder.function_inputs()
    functions = {}
    for fn_id, spec in enumerate(defs.FUNCTIONS, start=1):
        functions[spec.name] = so.function_object(
            spec.name, spec.display_name, spec.description, so.stable_uuid("function/" + spec.name), fn_id,
            defs.MESSAGE_DESTINATION, [function_inputs[name]["uuid"] for name in spec.inputs])
    incident_field = builder.field(defs.EMAIL_MESSAGE_ID_FIELD, so.TYPE_INCIDENT,
                                   "incident/" + defs.EMAIL_MESSAGE_ID_FIELD.name,
                                   so.stable_uuid("field/incident/" + defs.EMAIL_MESSAGE_ID_FIELD.name),
                                   prefix="properties")
    columns = [builder.field(spec, DATATABLE_TYPE_ID, "{0}/{1}".format(defs.DATATABLE_NAME, spec.name),
                             so.stable_uuid("column/{0}/{1}".format(defs.DATATABLE_NAME, spec.name)))
               for spec in defs.DATATABLE_COLUMNS]
    table = so.datatable_object(defs.DATATABLE_NAME, defs.DATATABLE_DISPLAY_NAME,
                                so.stable_uuid("type/" + defs.DATATABLE_NAME), columns)
    global_scripts = {}
    for spec in defs.PLAYBOOKS:
        if not spec.post_script_is_local and spec.post_script.name not in global_scripts:
            global_scripts[spec.post_script.name] = builder.script(spec.post_script)
    playbooks = [builder.playbook(spec, pb_id, functions, function_inputs, global_scripts)
                 for pb_id, spec in enumerate(defs.PLAYBOOKS, start=1)]
    activity_field = builder.field(defs.ACTIVITY_TEMPLATE_SELECT, so.TYPE_ACTIONINVOCATION,
                                   "actioninvocation/" + defs.ACTIVITY_TEMPLATE_SELECT.name,
                                   so.stable_uuid("field/actioninvocation/" + defs.ACTIVITY_TEMPLATE_SELECT.name))
    destination = so.message_destination_object(defs.MESSAGE_DESTINATION,
                                                so.stable_uuid("message_destination/" + defs.MESSAGE_DESTINATION))
    return so.export_document(list(function_inputs.values()) + [incident_field, activity_field], functions.values(),
                              [destination], [table], global_scripts.values(), playbooks)


def render():
    """export.res as text: sorted keys, 2-space indent, ASCII, trailing newline."""
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Compose fn_outbound_email/util/data/export.res")
    parser.add_argument("--check", action="store_true", help="only report whether export.res is up to date")
    args = parser.parse_args(argv)
    text = render()
    current = None
    if os.path.isfile(EXPORT_RES):
        with io.open(EXPORT_RES, encoding="utf-8") as existing:
            current = existing.read()
    if args.check:
        if current != text:
            print("{0} is stale; rebuild it with: {1}".format(EXPORT_RES, REBUILD_COMMAND))
            return 1
        print("{0} is up to date".format(EXPORT_RES))
        return 0
    if current != text:
        with io.open(EXPORT_RES, "w", encoding="utf-8", newline="\n") as target:
            target.write(text)
    print("wrote {0}".format(EXPORT_RES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
