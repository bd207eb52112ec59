# -*- coding: utf-8 -*-
"""At start-up: fill the playbooks' template choices and, when enabled, add the Email tab."""

import logging

from resilient_circuits import ResilientComponent

from fn_outbound_email.lib.soar.client import SoarClient
from fn_outbound_email.lib.soar.startup import apply_startup_customizations

LOG = logging.getLogger(__name__)


class StartupCustomizationsComponent(ResilientComponent):
    """Runs once when resilient-circuits loads the app; any failure is logged and the app starts anyway."""

    def __init__(self, opts):
        super(StartupCustomizationsComponent, self).__init__(opts)
        try:
            apply_startup_customizations(opts, SoarClient.for_app(self.rest_client(), opts))
        except Exception as err:  # noqa: BLE001 -- never fatal: sending mail matters more than these extras
            LOG.error("fn_outbound_email start-up customizations failed: %s", err)
