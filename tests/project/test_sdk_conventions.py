# -*- coding: utf-8 -*-
"""The SOAR app conventions resilient-sdk checks and IBM's apps follow.

resilient-sdk validate finds nothing to warn about, resilient-sdk package reads
setup.py whole (url, long description), dependencies are '~=' pinned, and
MANIFEST.in names only files that exist. resilient-sdk's own parser of setup.py
is used, so the checks read the file as the SDK does.
"""

import glob
import json
import os
import re
import subprocess
import zipfile

import pytest

from tests.support.app_package import ROOT, package_copy, run_validate, sdk_executable

SETUP_ATTRIBUTES = ["name", "url", "long_description", "install_requires"]


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory):
    return package_copy(tmp_path_factory, "sdk_package")


@pytest.fixture(scope="module")
def setup_attributes():
    package_file_helpers = pytest.importorskip("resilient_sdk.util.package_file_helpers",
                                               reason="resilient-sdk is not installed")
    return package_file_helpers.parse_setup_py(os.path.join(ROOT, "setup.py"), SETUP_ATTRIBUTES)


def test_validate_reports_no_warning_and_no_critical_issue(package_dir):
    validate = run_validate(package_dir)
    assert (validate.criticals, validate.warnings, validate.failed_checks) == (0, 0, []), validate.output


def test_package_writes_the_whole_long_description_and_the_url_into_app_json(package_dir, setup_attributes):
    output = subprocess.run([sdk_executable(), "package", "-p", package_dir], capture_output=True, text=True,
                            timeout=600)
    assert output.returncode == 0, output.stderr
    assert "is not a valid url" not in output.stdout + output.stderr
    with zipfile.ZipFile(glob.glob(os.path.join(package_dir, "dist", "app-*.zip"))[0]) as archive:
        app_json = json.loads(archive.read("app.json"))
    description = setup_attributes["long_description"]
    assert app_json["long_description"]["content"] == "<div>{0}</div>".format(description)
    # complete sentences, no line break doubled by the SDK's line-wise reading of setup.py
    assert "\n" not in description and description.endswith(".") and len(description) > 400
    assert app_json["author"]["website"] == setup_attributes["url"]


def test_url_is_one_the_sdk_accepts_and_the_readme_explains(setup_attributes):
    from resilient_sdk.util.sdk_helpers import is_valid_url
    assert is_valid_url(setup_attributes["url"])
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        assert setup_attributes["url"] in readme.read()


def test_dependencies_are_compatible_release_pins(setup_attributes):
    requirements = setup_attributes["install_requires"]
    for requirement in requirements:
        if requirement.startswith("resilient-circuits"):
            assert requirement == "resilient-circuits>=51.0.0"      # the SDK's rule: a floor only
        else:
            assert re.match(r"^[A-Za-z0-9_.-]+~=\d+\.\d+(\.\d+)?$", requirement), requirement
    assert any(requirement.startswith("aiosmtpd~=") for requirement in requirements)   # the demo's receiver


def test_manifest_names_only_files_that_exist():
    with open(os.path.join(ROOT, "MANIFEST.in"), encoding="utf-8") as manifest:
        lines = [line.split() for line in manifest if line.strip() and not line.startswith("#")]
    for words in lines:
        command, patterns = words[0], words[1:]
        if command == "include":
            for pattern in patterns:
                assert glob.glob(os.path.join(ROOT, pattern)), pattern
        elif command == "recursive-include":
            folders = glob.glob(os.path.join(ROOT, patterns[0]))
            assert folders and all(os.path.isdir(folder) for folder in folders), patterns[0]
        else:
            assert command == "global-exclude", words


def test_dockerfile_is_the_sdk_template_plus_what_it_explains():
    from resilient_sdk.util import sdk_helpers
    from resilient_sdk.util.constants import PACKAGE_TEMPLATE_PATH
    template = sdk_helpers.setup_env_and_render_jinja_file(
        PACKAGE_TEMPLATE_PATH, "Dockerfile", package_name="fn_outbound_email", version="3.0.0",
        resilient_libraries_version="51.0.0", sdk_version=sdk_helpers.get_resilient_sdk_version()).splitlines()
    with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as dockerfile:
        ours = dockerfile.read().splitlines()
    template_body = [line for line in template if not line.startswith("# Generated with")]
    ours_body = [line for line in ours if not line.startswith("# Generated with")]
    added = [line for line in ours_body if line not in template_body]
    assert [line for line in template_body if line not in ours_body] == []        # nothing of the template dropped
    assert [line.split()[0] for line in added] == ["ENV", "RUN", "COPY", "ENTRYPOINT"]
    assert "Not in the SDK 51 template" in added[1]                               # the reasons, as a shell comment


def test_entrypoint_sets_the_log_folder_the_readme_names(tmp_path):
    fake = tmp_path / "resilient-circuits"
    fake.write_text('#!/bin/sh\necho "logs=$APP_LOG_DIR"\n')
    fake.chmod(0o755)
    config = tmp_path / "app.config"
    config.write_text("[resilient]\n")
    environment = {key: value for key, value in os.environ.items() if key != "APP_LOG_DIR"}
    environment.update(PATH="{0}{1}{2}".format(tmp_path, os.pathsep, os.environ["PATH"]), APP_CONFIG_FILE=str(config))
    started = subprocess.run(["sh", os.path.join(ROOT, "entrypoint.sh")], env=environment, capture_output=True,
                             text=True, timeout=30)
    assert started.stdout.strip() == "logs=/var/log/rescircuits", started.stderr
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        assert "/var/log/rescircuits" in readme.read()
