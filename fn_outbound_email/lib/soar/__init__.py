"""SOAR's REST API: what a send reads from an incident (client), attachment downloads under a byte budget and a
deadline (download), and the start-up changes (startup)."""
