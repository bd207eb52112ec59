# -*- coding: utf-8 -*-
"""What the function components do when resilient-circuits reloads app.config (its ``reload`` event)."""

from circuits import handler

from fn_outbound_email.lib.delivery.factory import close_idle_connections


class ClosesIdleSessionsOnReload:
    """Mixed into the function components: a reloaded app.config closes the SMTP sessions kept for reuse, so no
    send after it goes out on a session set up (server, TLS, login) under the old settings."""

    @handler("reload")
    def _close_idle_smtp_sessions(self, event, opts):
        close_idle_connections()
