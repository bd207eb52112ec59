# -*- coding: utf-8 -*-
"""Source of the app's SOAR customizations (util/data/export.res and util/customize.py).

Both files are generated, never edited by hand:
  soar_objects.py            how SOAR export objects look (fields, functions, tables, scripts, playbooks with BPMN);
  definitions.py             what this app ships (inputs, functions, table, field, script, playbooks);
  original_identities.json   the identities of IBM's original app (uuids, names, labels, types, flags, select
                             values), which ours keeps; derived from a reference description by identities.py;
  scripts/*.py               the Python run by SOAR (pre-processing, post-processing, the global script);
  build.py                   composes them; `python -m fn_outbound_email.util.customizations.build` rewrites both
                             (also after `resilient-sdk codegen --reload`, which would drop parts of them).
"""
