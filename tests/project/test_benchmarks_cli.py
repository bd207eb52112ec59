# -*- coding: utf-8 -*-
"""The benchmarks package loads and answers --help (the figures themselves are not part of the test run)."""

import os
import subprocess
import sys

import benchmarks.__main__ as benchmarks_main
from benchmarks.common import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_help_lists_every_figure():
    finished = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "--json" in finished.stdout
    for name in benchmarks_main.FIGURES:
        assert name in finished.stdout


def test_each_figure_module_has_a_target_and_a_measure():
    assert list(benchmarks_main.FIGURES) == ["send_ratio", "rest_calls_per_send", "memory_ratio", "compose_time_ratio",
                                             "compose_memory_ratio", "rest_time_ratio", "smime_ratio",
                                             "wan_fresh_ratio", "wan_burst_ratio", "round_trips_fresh",
                                             "graph_wan_ratio", "graph_round_trips",
                                             "render_worker_ms"]
    for module in benchmarks_main.FIGURES.values():
        assert callable(module.measure) and module.TARGET > 0


def test_table_marks_pass_fail_and_skipped():
    text = benchmarks_main.table([Figure("a", 1.5, measured=1.2, detail="fast"), Figure("b", 2, measured=3),
                                  Figure("c", 1, skipped="no openssl")])
    lines = text.splitlines()
    assert lines[2].split() == ["a", "1.20", "<=", "1.5", "pass"]
    assert lines[3].split() == ["b", "3.00", "<=", "2", "FAIL"]
    assert lines[4].split() == ["c", "-", "<=", "1", "skipped"]
    assert "c: no openssl" in text and "a: fast" in text
