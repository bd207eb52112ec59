# -*- coding: utf-8 -*-
"""Every `resilient-circuits ... -l NAME` the README and the package's docstrings tell an administrator to run
names the package as resilient-circuits finds it.

resilient-circuits 51 matches -l against the installed distribution name literally: the original's
``-l fn-outbound-email`` finds nothing (it only warns "not found"). For each name found, ``resilient-circuits
config -c FILE -l NAME`` must write our [fn_outbound_email] section.
"""

import configparser
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# `resilient-circuits <subcommand> [options] -l NAME`, within one line of a command or code span
COMMAND = re.compile(r"resilient-circuits\s+[a-z]+\b[^\n`]*?\s-l\s+([A-Za-z0-9_.\-]+)")


def documents():
    yield os.path.join(ROOT, "README.md")
    for folder, _, names in os.walk(os.path.join(ROOT, "fn_outbound_email")):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def documented_names():
    """{package name given to -l: [where it is written]}"""
    names = {}
    for path in documents():
        with open(path, encoding="utf-8") as text:
            for number, line in enumerate(text, 1):
                for match in COMMAND.finditer(line):
                    names.setdefault(match.group(1), []).append("{0}:{1}".format(os.path.relpath(path, ROOT), number))
    return names


def test_the_readme_tells_admins_to_run_resilient_circuits_with_l():
    assert "fn_outbound_email" in documented_names()


def test_the_pattern_reads_commands_as_they_are_written():
    lines = ["`resilient-circuits selftest -l fn_outbound_email` checks",
             "resilient-circuits config -u -l fn-x  # note",
             "resilient-circuits customize -y -l pkg_a pkg_b",
             "pip install -l not_this"]
    found = [match.group(1) for line in lines for match in COMMAND.finditer(line)]
    assert found == ["fn_outbound_email", "fn-x", "pkg_a"]


@pytest.mark.parametrize("name", sorted(documented_names()))
def test_resilient_circuits_finds_the_documented_package(name, tmp_path):
    command = shutil.which("resilient-circuits", path=os.path.dirname(sys.executable))
    assert command, "resilient-circuits is not installed next to this Python"
    app_config = tmp_path / "app.config"
    done = subprocess.run([command, "config", "-c", str(app_config), "-l", name], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
    where = ", ".join(documented_names()[name])
    assert "not found" not in done.stdout + done.stderr, "{0} ({1}): {2}".format(name, where, done.stderr)
    sections = configparser.ConfigParser(interpolation=None)
    sections.read(str(app_config))
    assert "fn_outbound_email" in sections.sections(), "-l {0} ({1}) wrote no [fn_outbound_email]".format(name, where)
    assert sections.get("fn_outbound_email", "smtp_server")
