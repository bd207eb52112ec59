# -*- coding: utf-8 -*-
"""What the app changes in SOAR when it starts: the template choices and the Email tab.

The playbooks that offer a template choice have a select input named
``mail_template_select``; export.res ships it with the original app's
placeholder choice (e.g. "<add template name from app.config>"), and at start-up
its values are set to the labels of the ``[fn_outbound_email:templates]``
section so analysts pick from what is really configured (a choice whose label
stays keeps its id). Which playbooks have it is read from the app's own
export.res, so the list can never drift from what ``resilient-circuits
customize`` installs. Logs name playbooks by their display names.
Nothing here may stop the app from starting: every failure is logged.
"""

import json
import logging
import os

from resilient_lib.ui import Datatable, Field, Tab, create_tab

from fn_outbound_email.lib.errors import MailError
from fn_outbound_email.lib.settings import PACKAGE_DIR, SECTION, configured_templates, load_settings

LOG = logging.getLogger(__name__)

TEMPLATE_SELECT_FIELD = "mail_template_select"
ACTIVITY_FIELD_TYPE = "actioninvocation"      # rule activity fields (older designs) live in this type
SHIPPED_EXPORT = os.path.join(PACKAGE_DIR, "util", "data", "export.res")


class EmailTab(Tab):
    """Incident tab showing the conversation table and the last Message-ID."""
    UUID = "5a0e4b52-0f43-4c8e-9d1b-2f6a8c3e7b10"
    NAME = "Email"
    SECTION = SECTION
    CONTAINS = [Field("email_message_id"), Datatable("email_conversations")]


def playbook_forms_with_template_select(export_path=SHIPPED_EXPORT):
    """(field-type handle, display name) of each exported playbook whose activation form has the template
    select; the handle (``playbook_<uuid>``) addresses the form in SOAR, the display name is what people know."""
    with open(export_path, "r", encoding="utf-8") as export_file:
        export = json.load(export_file)
    forms = []
    for playbook in export.get("playbooks") or []:
        fields_type = playbook.get("fields_type") or {}
        fields = fields_type.get("fields") or {}
        names = fields.keys() if isinstance(fields, dict) else [field.get("name") for field in fields]
        if TEMPLATE_SELECT_FIELD in names and fields_type.get("type_name"):
            forms.append((fields_type["type_name"],
                          playbook.get("display_name") or playbook.get("name") or fields_type["type_name"]))
    return forms


def select_values_for(labels, current_values):
    """The select's new values: one per label, reusing the existing entry (and its id) when a label stays."""
    existing = {value.get("label"): value for value in current_values or []}
    return [existing.get(label) or {"label": label, "enabled": True, "hidden": False} for label in labels]


def refresh_template_select(soar, type_name, labels):
    """GET the select field of ``type_name`` and PUT it back with ``labels``; True when it was changed."""
    field_definition = soar.get_type_field(type_name, TEMPLATE_SELECT_FIELD)
    current = field_definition.get("values") or []
    if [value.get("label") for value in current] == list(labels):
        return False
    field_definition["values"] = select_values_for(labels, current)
    soar.update_type_field(type_name, TEMPLATE_SELECT_FIELD, field_definition)
    return True


def _without(type_name, err):
    """The error's text with the form's handle left out (the REST error may quote the URL holding it)."""
    return str(err).replace(type_name, "<playbook form>")


def apply_startup_customizations(opts, soar, export_path=SHIPPED_EXPORT):
    """Check app.config, refresh every template select and, when enabled, the Email tab. Never raises."""
    report_configuration_problem(opts)
    labels = list(configured_templates(opts))
    if labels:
        _refresh_all_template_selects(soar, labels, export_path)
    else:
        LOG.info("No [fn_outbound_email:templates] labels configured: template choices left as they are")

    section = opts.get(SECTION) or {}
    if str(section.get("enable_email_conversations", "")).strip().lower() in ("true", "yes", "on", "1"):
        try:
            create_tab(EmailTab, opts, update_existing=True)   # logs its own failures
        except Exception as err:                               # noqa: BLE001 -- start-up must go on
            LOG.error("Could not add the Email tab: %s", err)


def report_configuration_problem(opts):
    """Log at start-up what each send would fail with later (a wrong key, an OAuth2 combination that cannot
    work, an unreadable key file); the app still starts, so its other components and selftest can run."""
    try:
        load_settings(opts)
    except MailError as err:
        LOG.error("[%s] of app.config cannot work, every send will fail until it is fixed: %s", SECTION, err)
        return str(err)
    return None


def _refresh_all_template_selects(soar, labels, export_path):
    try:
        targets = playbook_forms_with_template_select(export_path)
    except (OSError, ValueError) as err:
        LOG.error("Could not read the playbook list from %s: %s", export_path, err)
        targets = []
    for type_name, display_name in targets:
        try:
            if refresh_template_select(soar, type_name, labels):
                LOG.info("Template choices of playbook '%s' set to: %s", display_name, ", ".join(labels))
        except Exception as err:                               # noqa: BLE001 -- one playbook must not stop the rest
            LOG.warning("Could not update the template choices of playbook '%s' (is the playbook installed? "
                        "run resilient-circuits customize): %s", display_name, _without(type_name, err))

    # rules from older designs may have an activity field of the same name; it is optional
    try:
        if refresh_template_select(soar, ACTIVITY_FIELD_TYPE, labels):
            LOG.info("Template choices of activity field %s set to: %s", TEMPLATE_SELECT_FIELD, ", ".join(labels))
    except Exception as err:                                   # noqa: BLE001
        LOG.debug("No activity field %s to update: %s", TEMPLATE_SELECT_FIELD, err)
