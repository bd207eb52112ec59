# -*- coding: utf-8 -*-
"""Skips are failures unless tests/allowed_skips.txt lists them with a reason.

A skipped test guards nothing: a missing `openssl` once turned 35 S/MIME tests into skips and the run still
passed. The conftest imports these hooks, so the README's test command and CI apply the same rule.
"""

import os

ALLOWED_SKIPS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "allowed_skips.txt")


def allowed_skips(path=ALLOWED_SKIPS_FILE):
    """{node id pattern: reason} from the allow-list; every entry must give a reason."""
    allowed = {}
    if not os.path.isfile(path):
        return allowed
    with open(path, encoding="utf-8") as listing:
        for number, line in enumerate(listing, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            pattern, _, reason = line.partition(" -- ")
            if not reason.strip():
                raise ValueError("{0} line {1}: give a reason after ' -- '".format(path, number))
            allowed[pattern.strip()] = reason.strip()
    return allowed


def _covers(pattern, node_id):
    # a node id, or a prefix ending in '*' (parametrized ids hold '[', so no glob classes)
    return node_id == pattern or (pattern.endswith("*") and node_id.startswith(pattern[:-1]))


def unexpected_skips(skipped_node_ids, allowed):
    """The node ids that no allow-list pattern covers."""
    return [node_id for node_id in skipped_node_ids if not any(_covers(pattern, node_id) for pattern in allowed)]


_SKIPPED = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    unexpected = unexpected_skips(_SKIPPED, allowed_skips())
    if unexpected and exitstatus == 0:
        session.exitstatus = 1
    session.config._skip_guard_unexpected = unexpected


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    unexpected = getattr(config, "_skip_guard_unexpected", [])
    if unexpected:
        terminalreporter.write_sep("=", "skipped tests not in tests/allowed_skips.txt (a skip is a failure)",
                                   red=True)
        for node_id in unexpected:
            terminalreporter.write_line(node_id)
