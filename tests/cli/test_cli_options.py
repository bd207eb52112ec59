# -*- coding: utf-8 -*-
"""`outbound-email`'s own options: --version, -v before or after the subcommand, examples in --help."""

import logging
import os
import subprocess
import sys

import pytest

from fn_outbound_email.cli import main as cli_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*arguments):
    return subprocess.run([sys.executable, "-m", "fn_outbound_email.cli.main"] + list(arguments), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def test_version_prints_the_installed_version():
    from importlib.metadata import version
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "outbound-email " + version("fn_outbound_email")


@pytest.mark.parametrize("arguments, verbose", [
    (["-v", "render"], True),
    (["render", "-v"], True),
    (["render", "--verbose"], True),
    (["--verbose", "render", "-t", "x.jinja"], True),
    (["render", "-t", "x.jinja", "-v"], True),
    (["render"], False),
    (["demo", "-v"], True),
    (["oauth2-token", "-v"], True),
])
def test_verbose_is_accepted_before_and_after_the_subcommand(arguments, verbose):
    args = cli_main.build_parser().parse_args(arguments)
    assert args.verbose is verbose


def test_verbose_after_the_subcommand_turns_logging_on(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: seen.append(kwargs["level"]))
    monkeypatch.chdir(tmp_path)
    assert cli_main.main(["render", "-t", "missing.jinja", "-v"]) == 2      # the template error, after logging is set
    assert seen == [logging.INFO]
    assert "missing.jinja" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(cli_main.EXAMPLES))
def test_every_subcommand_help_shows_examples_of_itself(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    examples = result.stdout.split("\nexamples:\n", 1)[1]
    shown = [line.strip() for line in examples.splitlines() if line.startswith("  outbound-email ")]
    assert len(shown) >= 2 and all(line.startswith("outbound-email " + command) for line in shown)
    # every example only uses options the subcommand has
    options = {word.split("=")[0] for line in shown for word in line.split() if word.startswith("-")}
    for option in options:
        assert option in result.stdout.split("\nexamples:\n")[0], option


def test_main_help_lists_one_example_per_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in cli_main.EXAMPLES:
        assert "\n  outbound-email {0}".format(command) in result.stdout
    assert "--version" in result.stdout and "-v, --verbose" in result.stdout
