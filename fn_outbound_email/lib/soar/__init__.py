"""SOAR's REST API: what a send reads from an incident (client) and the start-up changes (startup)."""
