# -*- coding: utf-8 -*-
"""Source of the app's SOAR customizations (util/data/export.res).

export.res is generated, never edited by hand:
  soar_objects.py  how SOAR export objects look (fields, functions, tables, scripts, playbooks with BPMN);
  definitions.py   what this app ships (inputs, functions, table, field, script, playbooks);
  scripts/*.py     the Python run by SOAR (pre-processing, post-processing, the global script);
  build.py         composes the document; `python -m fn_outbound_email.util.customizations.build` rewrites it.
"""
