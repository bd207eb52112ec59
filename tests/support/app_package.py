# -*- coding: utf-8 -*-
"""Run `resilient-sdk validate` and `resilient-sdk package` as an administrator would, on a copy of the tree.

Both commands write into the package folder (dist/, the validate report, build files), so they run on a copy
of the files git would commit and the work tree stays clean. Shared by tests/project/test_packaging.py and
.ci/check_app_package.py.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
from collections import namedtuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMAND_TIMEOUT = 600  # package builds the sdist in a fresh isolated environment (pip installs setuptools)
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

ValidateResult = namedtuple("ValidateResult", "criticals warnings failed_checks output")


class SdkCommandError(Exception):
    """A resilient-sdk command failed or printed something this module cannot read; the message has its output."""


def sdk_executable():
    """resilient-sdk of this interpreter's environment, else the one on PATH; None when it is not installed."""
    beside_python = os.path.join(os.path.dirname(sys.executable), "resilient-sdk")
    if os.access(beside_python, os.X_OK):
        return beside_python
    return shutil.which("resilient-sdk")


SKIPPED_DIRS = {".git", "dist", "build", "__pycache__", ".tox", ".pytest_cache", ".eggs", "outbox"}
# backups `resilient-sdk codegen --reload` leaves (customize.py-<timestamp>.bak, ...): never part of the package,
# and MANIFEST.in excludes them from the sdist
BACKUP_SUFFIX = ".bak"


def source_files(prefix="", root=ROOT):
    """Paths (relative to root) of the files git would commit under prefix: tracked or new, not ignored, no
    codegen backup. Without git (an unpacked sdist), every file but builds, caches and backups."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                                  prefix or "."], cwd=root, check=True, capture_output=True).stdout.decode("utf-8")
        names = listing.split("\0")
    except (OSError, subprocess.CalledProcessError):
        names = []
        for folder, subfolders, files in os.walk(os.path.join(root, prefix)):
            subfolders[:] = [name for name in subfolders if name not in SKIPPED_DIRS and not name.endswith(".egg-info")]
            names.extend(os.path.relpath(os.path.join(folder, name), root) for name in files)
    # a tracked file deleted in the work tree is not part of the package
    return {name for name in names
            if name and not name.endswith(BACKUP_SUFFIX) and os.path.isfile(os.path.join(root, name))}


def copy_source_tree(destination):
    """Copy the files source_files() lists to destination."""
    for relative in source_files():
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, relative), target)


def _run_sdk(package_dir, *arguments):
    command = [sdk_executable() or "resilient-sdk"] + list(arguments) + ["-p", package_dir]
    try:
        completed = subprocess.run(command, cwd=package_dir, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SdkCommandError("{0} could not run: {1}".format(" ".join(command), err))
    output = ANSI_COLOUR.sub("", completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise SdkCommandError("{0} exited with {1}:\n{2}".format(" ".join(command), completed.returncode, output))
    return output


def run_validate(package_dir):
    """`resilient-sdk validate --validate` (the static checks); it exits 0 whatever it finds, so read its summary."""
    output = _run_sdk(package_dir, "validate", "--validate")
    criticals = re.search(r"^Critical Issues:\s*(\d+)\s*$", output, re.MULTILINE)
    warnings = re.search(r"^Warnings:\s*(\d+)\s*$", output, re.MULTILINE)
    if not criticals or not warnings:
        raise SdkCommandError("no summary in the resilient-sdk validate output:\n" + output)
    failed_checks = re.findall(r"^(.+) FAIL\s*$", output, re.MULTILINE)
    return ValidateResult(int(criticals.group(1)), int(warnings.group(1)), failed_checks, output)


# what setuptools prints about setup.py options and MANIFEST.in patterns while the sdist is built
SETUPTOOLS_WARNING = re.compile(r"^(warning: .*|WARNING Unknown distribution option: .*)$", re.MULTILINE)


def build_app_zip(package_dir, outputs=None):
    """`resilient-sdk package`: the App Host zip in package_dir/dist (with dist/validate_report.md if present).
    The command's output is appended to ``outputs`` when given."""
    output = _run_sdk(package_dir, "package")
    if outputs is not None:
        outputs.append(output)
    zips = glob.glob(os.path.join(package_dir, "dist", "app-*.zip"))
    if len(zips) != 1:
        raise SdkCommandError("expected one app-*.zip in dist/, found {0}:\n{1}".format(zips, output))
    return zips[0]


def package_copy(tmp_path_factory, name):
    """A copy of the source tree for resilient-sdk to work on (validate and package write into it); the calling
    test is skipped when resilient-sdk is not installed."""
    import pytest
    if not sdk_executable():
        pytest.skip("resilient-sdk is not installed (pip install '.[test]' brings it, Python >= 3.11)")
    folder = str(tmp_path_factory.mktemp(name))
    copy_source_tree(folder)
    return folder
