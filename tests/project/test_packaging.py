# -*- coding: utf-8 -*-
"""App Host packaging: resilient-sdk validate and package accept the app, and the zip holds what SOAR needs.

`resilient-sdk package` runs once per test session on a copy of the tree (tests/support/app_package.py). The zip
holds app.json, export.res and the sdist; the sdist holds the Dockerfile, entrypoint.sh,
apikey_permissions.txt, the templates, export.res and the customization scripts.
"""

import base64
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.support.app_package import (ROOT, SETUPTOOLS_WARNING, build_app_zip, package_copy, run_validate, sdk_executable,
                               source_files)

VERSION = "3.0.0"
EXPORT_RES = "fn_outbound_email/util/data/export.res"
CUSTOMIZE_PY = "fn_outbound_email/util/customize.py"
SDIST = "fn_outbound_email-{0}.tar.gz".format(VERSION)
SDIST_ROOT = "fn_outbound_email-{0}/".format(VERSION)


def read_lines(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as text:
        return [line.strip() for line in text]


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory):
    return package_copy(tmp_path_factory, "package")


@pytest.fixture(scope="module")
def validate_result(package_dir):
    return run_validate(package_dir)


PACKAGE_OUTPUT = []         # what resilient-sdk package printed


@pytest.fixture(scope="module")
def app_zip(package_dir, validate_result):
    # after validate, so the zip carries dist/validate_report.md as a submission would; a codegen backup and
    # bytecode lie in the tree as in a developer's checkout, and the sdist must leave them out
    for leftover in ("fn_outbound_email/util/customize.py-20240101120000.bak", "tests/__pycache__/x.cpython-311.pyc"):
        path = os.path.join(package_dir, leftover)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    with zipfile.ZipFile(build_app_zip(package_dir, PACKAGE_OUTPUT)) as archive:
        yield archive


@pytest.fixture(scope="module")
def sdist(app_zip, tmp_path_factory):
    path = tmp_path_factory.mktemp("sdist") / SDIST
    path.write_bytes(app_zip.read(SDIST))
    with tarfile.open(str(path)) as archive:
        yield archive


def sdist_names(sdist):
    return {member.name[len(SDIST_ROOT):] for member in sdist.getmembers() if member.isfile()}


class TestResilientSdk:

    def test_validate_reports_no_critical_issue_and_no_failed_check(self, validate_result):
        assert (validate_result.criticals, validate_result.failed_checks) == (0, []), validate_result.output

    def test_package_prints_no_setuptools_warning_but_the_sdk_template_lines(self, app_zip):
        # display_name reaches resilient-sdk, not setuptools, and MANIFEST.in names files by what they are; only
        # resilient-sdk's own template line 'global-exclude *.bak' (validate checks for it) has nothing to exclude
        assert PACKAGE_OUTPUT
        assert set(SETUPTOOLS_WARNING.findall(PACKAGE_OUTPUT[0])) <= {
            "warning: no previously-included files matching '*.bak' found anywhere in distribution"}, PACKAGE_OUTPUT[0]

    def test_app_zip_holds_app_json_export_res_sdist_and_validate_report(self, app_zip):
        assert {"app.json", "export.res", SDIST, "validate_report.md"} <= set(app_zip.namelist())

    def test_app_json_describes_the_container_and_its_api_key(self, app_zip):
        app = json.loads(app_zip.read("app.json"))
        executable = app["current_installation"]["executables"][0]
        expected_permissions = [line for line in read_lines("apikey_permissions.txt") if line and line[0] != "#"]
        assert executable["permission_handles"] == expected_permissions
        assert executable["image"] == "ibmresilient/fn_outbound_email:{0}".format(VERSION)
        assert "[fn_outbound_email]" in executable["config_string"]
        assert app["display_name"] == "Outbound Email"
        with open(os.path.join(ROOT, "icons", "app_logo.png"), "rb") as logo:
            assert app["icon"]["data"] == base64.b64encode(logo.read()).decode("ascii")

    def test_export_res_in_zip_carries_both_functions_with_their_payload_samples(self, app_zip):
        export = json.loads(app_zip.read("export.res"))
        functions = {fn["name"]: fn for fn in export["functions"]}
        assert set(functions) >= {"send_email", "send_email2"}
        for name in ("send_email", "send_email2"):
            with open(os.path.join(ROOT, "payload_samples", name, "output_json_example.json"), encoding="utf-8") as ex:
                assert json.loads(functions[name]["output_json_example"]) == json.load(ex)


class TestSdist:

    def test_sdist_holds_the_container_files(self, sdist):
        assert {"Dockerfile", "entrypoint.sh", "apikey_permissions.txt", "setup.py", "README.md",
                "app_logo.png", "icons/app_logo.png", "icons/company_logo.png",
                "fn_outbound_email/LICENSE"} <= sdist_names(sdist)

    def test_sdist_holds_export_res_templates_and_customization_scripts(self, sdist):
        names = sdist_names(sdist)
        assert "fn_outbound_email/util/data/export.res" in names
        assert {"fn_outbound_email/data/templates/example_send_email.jinja",
                "fn_outbound_email/data/templates/datatable.jinja"} <= names
        # every file of the package (code, scripts the playbooks embed, data) is shipped
        missing = {name for name in source_files("fn_outbound_email") if not name.endswith((".pyc", ".pyo"))} - names
        assert not missing

    def test_sdist_holds_the_payload_samples(self, sdist):
        assert source_files("payload_samples") <= sdist_names(sdist)

    def test_sdist_leaves_out_codegen_backups_and_bytecode(self, sdist):
        assert not [name for name in sdist_names(sdist) if name.endswith((".bak", ".pyc")) or "__pycache__" in name]


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    """A copy of the tree after `resilient-sdk codegen --reload -e <copy of export.res>`, and its environment."""
    tree = pathlib.Path(package_copy(tmp_path_factory, "codegen"))
    base = tree.parent
    export = base / "export.res"
    export.write_bytes((tree / EXPORT_RES).read_bytes())
    environment = dict(os.environ, HOME=str(base))      # codegen may write its log under ~/.resilient
    completed = subprocess.run([sdk_executable(), "codegen", "-p", str(tree), "--reload", "-e", str(export)],
                               cwd=str(tree), env=environment, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return tree, environment


class TestCodegenReload:
    """`resilient-sdk codegen --reload` as a developer runs it, offline: then the build restores the customizations.

    codegen renames customize.py and export.res to *-<time>.bak, then writes both from its own templates and the
    export it is given (-e; without -e it connects to SOAR). It keeps only objects its reload list names, so the
    activity field mail_template_select (no rule uses it) is dropped. The export must lie outside the package:
    codegen renames the package's own export.res before reading -e.
    """

    @staticmethod
    def build(tree, environment, *arguments):
        # run from the copy, so that python -m finds the copy's package first
        return subprocess.run([sys.executable, "-m", "fn_outbound_email.util.customizations.build"] + list(arguments),
                              cwd=str(tree), env=environment, capture_output=True, text=True, timeout=60)

    def test_codegen_output_is_stale_and_the_build_restores_export_res_and_customize_py(self, reloaded):
        tree, environment = reloaded
        regenerated = json.loads((tree / EXPORT_RES).read_text(encoding="utf-8"))
        assert "mail_template_select" not in {field["name"] for field in regenerated["fields"]}
        stale = self.build(tree, environment, "--check")
        assert stale.returncode == 1 and "is stale" in stale.stdout
        restored = self.build(tree, environment)
        assert restored.returncode == 0, restored.stderr
        assert "wrote {0}".format(tree / EXPORT_RES) in restored.stdout
        for name in (EXPORT_RES, CUSTOMIZE_PY):
            with open(os.path.join(ROOT, name), "rb") as ours:
                assert (tree / name).read_bytes() == ours.read(), name
        assert self.build(tree, environment, "--check").returncode == 0

    def test_codegen_backups_are_not_package_files(self, reloaded):
        tree, _ = reloaded
        backups = {str(path.relative_to(tree)) for path in tree.rglob("*.bak")}
        assert {name.split("-")[0] for name in backups} == {CUSTOMIZE_PY, EXPORT_RES}
        assert not backups & source_files(root=str(tree))
        assert EXPORT_RES in source_files(root=str(tree))


class TestContainerFiles:

    def test_dockerfile_builds_on_the_soar_apps_base_image_as_user_1001(self):
        lines = [line for line in read_lines("Dockerfile") if line and not line.startswith("#")]
        assert "FROM ${BASE_IMAGE_REPO}/ibmresilient/soarapps-base-docker-image:${BASE_IMAGE_TAG}" in lines
        assert "COPY ./dist /tmp/packages" in lines
        assert "ENV APP_CONFIG_FILE=/etc/rescircuits/app.config" in lines
        assert any(line.startswith("RUN mkdir -p /var/log/rescircuits") for line in lines)
        assert [line for line in lines if line.startswith("USER ")][-1] == "USER 1001"
        assert lines[-1] == 'ENTRYPOINT ["sh", "/entrypoint.sh"]'

    @pytest.fixture
    def fake_circuits(self, tmp_path):
        """A resilient-circuits stand-in on PATH that prints how it was started."""
        fake = tmp_path / "resilient-circuits"
        fake.write_text('#!/bin/sh\necho "config=$APP_CONFIG_FILE args=$*"\n')
        fake.chmod(0o755)
        return tmp_path

    def run_entrypoint(self, fake_circuits, config_path, *arguments):
        environment = dict(os.environ, PATH="{0}{1}{2}".format(fake_circuits, os.pathsep, os.environ["PATH"]),
                           APP_CONFIG_FILE=str(config_path))
        return subprocess.run(["sh", os.path.join(ROOT, "entrypoint.sh")] + list(arguments),
                              env=environment, capture_output=True, text=True, timeout=30)

    def test_entrypoint_runs_resilient_circuits_with_the_config_and_arguments(self, fake_circuits, tmp_path):
        config = tmp_path / "app.config"
        config.write_text("[resilient]\n")
        started = self.run_entrypoint(fake_circuits, config, "--loglevel", "DEBUG")
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == "config={0} args=run --loglevel DEBUG".format(config)

    def test_entrypoint_without_app_config_stops_with_a_clear_message(self, fake_circuits, tmp_path):
        started = self.run_entrypoint(fake_circuits, tmp_path / "missing.config")
        assert started.returncode == 1
        assert "no readable app.config" in started.stderr and started.stdout == ""
