# -*- coding: utf-8 -*-
"""Builders for the objects of a SOAR export document (export.res), shaped as SOAR exports them.

Only the format lives here; what the app ships is in definitions.py. Every builder is a pure function of its
arguments (no clock, no randomness), so the same definitions always give the same export.res.
"""

import json
import uuid
from xml.sax.saxutils import escape, quoteattr

# uuid5 namespace of this app's own customizations: an object the original app lacks has the uuid
# uuid5(NAMESPACE, "<kind>/<name>"), stable across builds and distinct from other apps' objects
NAMESPACE = uuid.UUID("5d0c3c1e-8f7a-4b8e-9a57-0b1e6f2a9c41")

EXPORT_DATE = 1735689600000  # 2025-01-01T00:00:00Z: a fixed date keeps the build reproducible
SERVER_VERSION = {"build_number": 0, "f": 0, "m": 0, "major": 51, "minor": 0, "r": 0, "v": 51,
                  "version": "51.0.0.0.0"}
PRINCIPAL = {"display_name": "Outbound Email App", "id": 1, "name": "admin@example.com", "type": "user"}

TYPE_INCIDENT = 0
TYPE_ACTIONINVOCATION = 6      # activity fields (menu-item rules)
TYPE_DATATABLE = 8
TYPE_FUNCTION = 11
TYPE_PLAYBOOK_INPUTS = 28

# resilient-sdk appends these to every export it writes; the SOAR importer needs them (reference §4, §10)
INTERNAL_FIELD = {
    "export_key": "incident/internal_customizations_field", "id": 0, "input_type": "text", "internal": True,
    "name": "internal_customizations_field", "read_only": True, "text": "Customizations Field (internal)",
    "type_id": TYPE_INCIDENT, "uuid": "bfeec2d4-3770-11e8-ad39-4a0004044aa1",
}
INTERNAL_INCIDENT_TYPE = {
    "create_date": EXPORT_DATE, "description": "Customization Packages (internal)", "enabled": False,
    "export_key": "Customization Packages (internal)", "hidden": False, "id": 0,
    "name": "Customization Packages (internal)", "parent_id": None, "system": False,
    "update_date": EXPORT_DATE, "uuid": "bfeec2d4-3770-11e8-ad39-4a0004044aa0",
}


def stable_uuid(key):
    """The uuid of the object known in this app as `key` (e.g. "function/send_email2")."""
    return str(uuid.uuid5(NAMESPACE, key))


def playbook_handle(playbook_uuid):
    """The name SOAR gives a playbook's process, deployment and input type (reference §9 naming chain)."""
    return "playbook_" + playbook_uuid.replace("-", "_")


def select_value(label, value, value_uuid, default=False):
    """One choice of a select field."""
    return {"default": default, "enabled": True, "hidden": False, "label": label, "properties": None,
            "uuid": value_uuid, "value": value}


def field_object(name, text, input_type, type_id, export_key, field_uuid, field_id, tooltip="", placeholder="",
                 required=False, values=(), blank_option=False, prefix=None, rich_text=False, chosen=False):
    """A field definition: function input, incident field, table column or playbook input (reference §4)."""
    obj = {
        "allow_default_value": False, "blank_option": blank_option, "calculated": False, "changeable": True,
        "chosen": chosen, "default_chosen_by_server": False, "deprecated": False, "export_key": export_key,
        "hide_notification": False, "id": field_id, "input_type": input_type, "internal": False,
        "is_tracked": False, "name": name, "operation_perms": {}, "operations": [], "placeholder": placeholder,
        "prefix": prefix, "read_only": False, "rich_text": rich_text, "tags": [], "templates": [], "text": text,
        "tooltip": tooltip, "type_id": type_id, "uuid": field_uuid, "values": list(values),
    }
    if required:
        obj["required"] = "always"
    return obj


def view_item(content, field_type, element="field_uuid"):
    """One entry of a function's or playbook's `view_items` (the order of its dialog)."""
    return {"content": content, "element": element, "field_type": field_type, "show_if": None,
            "show_link_header": False, "step_label": None}


def message_destination_object(name, md_uuid):
    """A queue message destination that the app's functions are delivered on (reference §6)."""
    return {"api_keys": [], "destination_type": 0, "expect_ack": True, "export_key": name, "name": name,
            "programmatic_name": name, "tags": [], "users": [], "uuid": md_uuid}


def function_object(name, display_name, description, fn_uuid, fn_id, destination, input_uuids):
    """A function whose inputs are the `__function` fields with `input_uuids`, in dialog order (reference §5)."""
    return {
        "created_date": EXPORT_DATE, "description": {"content": description, "format": "text"},
        "destination_handle": destination, "display_name": display_name, "export_key": name, "id": fn_id,
        "last_modified_by": PRINCIPAL, "last_modified_time": EXPORT_DATE, "name": name,
        "output_description": {"content": None, "format": "text"}, "output_json_example": "",
        "output_json_schema": "", "tags": [], "uuid": fn_uuid, "version": 1,
        "view_items": [view_item(input_uuid, "__function") for input_uuid in input_uuids], "workflows": [],
    }


def _type_object(type_name, display_name, type_id, type_uuid, parent_types, fields):
    return {
        "actions": [], "display_name": display_name, "export_key": type_name, "fields": fields,
        "for_actions": False, "for_custom_fields": False, "for_notifications": False, "for_workflows": False,
        "id": None, "parent_types": parent_types, "properties": {"can_create": False, "can_destroy": False,
                                                                 "for_who": []},
        "scripts": [], "tags": [], "type_id": type_id, "type_name": type_name, "uuid": type_uuid,
    }


def datatable_object(type_name, display_name, table_uuid, columns):
    """A data table on incidents; `columns` are field objects, displayed in list order (reference §7)."""
    fields = {}
    for order, column in enumerate(columns):
        fields[column["name"]] = dict(column, order=order, width=column.get("width", 80))
    return _type_object(type_name, display_name, TYPE_DATATABLE, table_uuid, ["incident"], fields)


def script_object(name, programmatic_name, description, script_uuid, script_id, object_type, script_text,
                  playbook_name=None):
    """A python3 script: global, or local to the playbook `playbook_name` (reference §8)."""
    return {
        "actions": [], "created_date": EXPORT_DATE, "description": description, "enabled": False,
        "export_key": name, "id": script_id, "language": "python3", "last_modified_by": PRINCIPAL["name"],
        "last_modified_time": EXPORT_DATE, "name": name, "object_type": object_type,
        "playbook_handle": playbook_name, "programmatic_name": programmatic_name, "script_text": script_text,
        "tags": [], "uuid": script_uuid,
    }


def function_node(inputs, pre_processing_script, result_name):
    """The JSON a playbook's function element carries: static inputs keyed by `__function` field uuid."""
    return {"inputs": inputs, "pre_processing_script": pre_processing_script,
            "pre_processing_script_language": "python3", "result_name": result_name}


def static_text(text):
    return {"input_type": "static", "static_input": {"multiselect_value": [], "text_value": text}}


def static_select(value_uuid):
    return {"input_type": "static", "static_input": {"multiselect_value": [], "select_value": value_uuid}}


def static_empty(input_type):
    """A function input the node leaves empty (its pre-processing script may set it), as SOAR writes one."""
    if input_type in ("text", "textarea"):
        return static_text("")
    return {"input_type": "static", "static_input": {"multiselect_value": []}}


class FunctionStep(object):
    """A function element of a playbook: calls the function `fn_uuid` with the JSON `node`."""
    kind = "function"

    def __init__(self, display_name, fn_uuid, node):
        self.display_name, self.uuid, self.node = display_name, fn_uuid, node


class ScriptStep(object):
    """A script element of a playbook: runs the (global or local) script `script_uuid`."""
    kind = "script"

    def __init__(self, display_name, script_uuid):
        self.display_name, self.uuid = display_name, script_uuid


_XML_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
             '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" '
             'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
             'xmlns:omgdc="http://www.omg.org/spec/DD/20100524/DC" '
             'xmlns:omgdi="http://www.omg.org/spec/DD/20100524/DI" '
             'xmlns:resilient="http://resilient.ibm.com/bpmn" '
             'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
             'targetNamespace="http://www.camunda.org/test">')
_CENTER_X = 721
_EVENT_SIZE = (157, 52)
_TASK_SIZE = (196, 84)
_GAP = 60


def playbook_xml(handle, steps):
    """BPMN of a playbook running `steps` one after the other between a start and an end event (reference §9.1)."""
    ids = ["StartEvent_1"] + ["{0}_{1}".format("ServiceTask" if step.kind == "function" else "ScriptTask", n)
                              for n, step in enumerate(steps, start=2)] + ["EndPoint_{0}".format(len(steps) + 2)]
    flows = ["Flow_{0}".format(n) for n in range(1, len(ids))]

    def links(position):
        incoming = "<incoming>{0}</incoming>".format(flows[position - 1]) if position > 0 else ""
        outgoing = "<outgoing>{0}</outgoing>".format(flows[position]) if position < len(flows) else ""
        return incoming + outgoing

    process = ['<process id="{0}" isExecutable="true" name="{0}"><documentation/>'.format(handle),
               '<startEvent id="{0}">{1}</startEvent>'.format(ids[0], links(0))]
    for position, step in enumerate(steps, start=1):
        if step.kind == "function":
            node_json = json.dumps(step.node, sort_keys=True)
            process.append('<serviceTask id="{0}" name={1} resilient:type="function"><extensionElements>'
                           '<resilient:function uuid="{2}">{3}</resilient:function></extensionElements>{4}'
                           '</serviceTask>'.format(ids[position], quoteattr(step.display_name), step.uuid,
                                                   escape(node_json), links(position)))
        else:
            process.append('<scriptTask id="{0}" name={1}><extensionElements><resilient:script uuid="{2}"/>'
                           '</extensionElements>{3}<script>script</script></scriptTask>'
                           .format(ids[position], quoteattr(step.display_name), step.uuid, links(position)))
    process.append('<endEvent id="{0}" resilient:documentation="End point">{1}</endEvent>'
                   .format(ids[-1], links(len(ids) - 1)))
    process += ['<sequenceFlow id="{0}" sourceRef="{1}" targetRef="{2}"/>'.format(flow, ids[n], ids[n + 1])
                for n, flow in enumerate(flows)]
    process.append("</process>")
    return _XML_HEAD + "".join(process) + _diagram(handle, ids, flows) + "</definitions>"


def _diagram(handle, ids, flows):
    """A vertical layout: each node centred under the previous one, edges straight down."""
    shapes, boxes, top = [], [], 65
    for position, element_id in enumerate(ids):
        width, height = _EVENT_SIZE if position in (0, len(ids) - 1) else _TASK_SIZE
        left = _CENTER_X - width // 2
        boxes.append((top, top + height))
        shapes.append('<bpmndi:BPMNShape bpmnElement="{0}" id="{0}_di"><omgdc:Bounds height="{1}" width="{2}" '
                      'x="{3}" y="{4}"/></bpmndi:BPMNShape>'.format(element_id, height, width, left, top))
        top += height + _GAP
    edges = ['<bpmndi:BPMNEdge bpmnElement="{0}" id="{0}_di"><omgdi:waypoint x="{1}" y="{2}"/>'
             '<omgdi:waypoint x="{1}" y="{3}"/></bpmndi:BPMNEdge>'.format(flow, _CENTER_X, boxes[n][1], boxes[n + 1][0])
             for n, flow in enumerate(flows)]
    return ('<bpmndi:BPMNDiagram id="BPMNDiagram_1"><bpmndi:BPMNPlane bpmnElement="{0}" id="BPMNPlane_1">'
            .format(handle) + "".join(shapes + edges) + "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>")


def playbook_object(name, display_name, description, pb_uuid, pb_id, object_type, form, inputs_uuid,
                    tag_uuid, steps, local_scripts=()):
    """A manual, enabled playbook whose activation form shows `form` in order: field objects, and html
    strings (separators) between them."""
    handle = playbook_handle(pb_uuid)
    input_fields = [item for item in form if isinstance(item, dict)]
    fields_type = _type_object(handle, display_name, TYPE_PLAYBOOK_INPUTS, inputs_uuid, ["__playbook"],
                               {field["name"]: field for field in input_fields})
    view = [view_item(item["uuid"], handle) if isinstance(item, dict) else view_item(item, None, element="html")
            for item in form]
    return {
        "activation_type": "manual",
        "content": {"content_version": 1, "xml": playbook_xml(handle, steps)},
        "create_date": EXPORT_DATE, "creator_principal": PRINCIPAL, "deployment_id": handle,
        "description": {"content": description, "format": "text"}, "display_name": display_name,
        "export_key": name, "field_type_handle": handle, "fields_type": fields_type, "has_logical_errors": False,
        "id": pb_id, "is_deleted": False, "is_locked": False, "last_modified_principal": PRINCIPAL,
        "last_modified_time": EXPORT_DATE, "local_scripts": list(local_scripts),
        "manual_settings": {"activation_conditions": {"conditions": [], "logic_type": "all"}, "view_items": view},
        "name": name, "object_type": object_type, "status": "enabled",
        "tag": {"display_name": "Playbook_" + pb_uuid, "id": pb_id, "name": handle, "type": "playbook",
                "uuid": tag_uuid},
        "tags": [], "type": "default", "uuid": pb_uuid, "version": 1,
    }


def export_document(fields, functions, message_destinations, types, scripts, playbooks):
    """The whole export.res document around the app's objects (reference §1)."""
    return {
        "action_order": [], "actions": [], "apps": [], "automatic_tasks": [], "case_matching_profiles": [],
        "export_date": EXPORT_DATE, "export_format_version": 2, "export_type": None,
        "fields": list(fields) + [INTERNAL_FIELD], "functions": list(functions), "geos": None, "groups": None,
        "id": 1, "inbound_destinations": [], "inbound_mailboxes": None, "incident_artifact_types": [],
        "incident_types": [INTERNAL_INCIDENT_TYPE], "layouts": [], "locale": None,
        "message_destinations": list(message_destinations), "notifications": None, "overrides": None,
        "phases": [], "playbooks": list(playbooks), "regulators": None, "roles": [], "scripts": list(scripts),
        "server_version": SERVER_VERSION, "tags": [], "task_order": [], "timeframes": None,
        "types": list(types), "workflows": [], "workspaces": [],
    }
