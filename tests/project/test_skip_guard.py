# -*- coding: utf-8 -*-
"""The skip guard: an unlisted skip fails the run, a listed one (with its reason) does not."""

import subprocess
import sys
import textwrap

import pytest

from tests.support.skip_guard import allowed_skips, unexpected_skips


def test_unlisted_skips_are_reported():
    allowed = {"tests/test_a.py::test_needs_chromium": "no browser"}
    skipped = ["tests/test_a.py::test_needs_chromium", "tests/message/test_smime.py::test_sign"]
    assert unexpected_skips(skipped, allowed) == ["tests/message/test_smime.py::test_sign"]


def test_patterns_cover_parametrized_ids():
    assert unexpected_skips(["tests/t.py::test_x[1]", "tests/t.py::test_x[2]"], {"tests/t.py::test_x[*": "r"}) == []


def test_an_entry_without_reason_is_refused(tmp_path):
    listing = tmp_path / "allowed.txt"
    listing.write_text("# comment\ntests/t.py::test_x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        allowed_skips(str(listing))


def test_a_skipped_test_fails_a_real_pytest_run(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.support.skip_guard import *  # noqa\n", encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent("""
        import pytest

        def test_runs():
            assert True

        def test_skips():
            pytest.skip("tool missing")
    """), encoding="utf-8")
    import os
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "test_sample.py::test_skips" in run.stdout
    assert "1 passed, 1 skipped" in run.stdout
