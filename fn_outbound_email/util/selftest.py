# -*- coding: utf-8 -*-
"""Selftest: `resilient-circuits selftest -l fn-outbound-email` (minimal; see issue 3)."""

import logging

from fn_outbound_email.lib.settings import load_settings

LOG = logging.getLogger(__name__)


def selftest_function(opts):
    """Check that the configuration can be read. Never raises."""
    try:
        load_settings(opts)
    except Exception as err:  # selftest must never raise
        return {"state": "failure", "reason": str(err)}
    return {"state": "success"}
