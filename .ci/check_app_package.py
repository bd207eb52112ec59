# -*- coding: utf-8 -*-
"""CI: `resilient-sdk validate -p . --validate` finds no issue, not even a warning, and `resilient-sdk package` builds
the zip.

validate exits 0 whatever it finds, so its summary is read instead. Both commands run on a temporary copy of the
tree (they write dist/ and build files); nothing is left behind. Exit status 1 on any failure.
"""

import os
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.app_package import SdkCommandError, build_app_zip, copy_source_tree, run_validate  # noqa: E402


def main():
    with tempfile.TemporaryDirectory(prefix="app-package-") as package_dir:
        copy_source_tree(package_dir)
        try:
            validate = run_validate(package_dir)
            if validate.criticals or validate.warnings or validate.failed_checks:
                print(validate.output)
                print("resilient-sdk validate: {0} critical issue(s), {1} warning(s), failed checks: {2}".format(
                    validate.criticals, validate.warnings, ", ".join(validate.failed_checks) or "none"))
                return 1
            app_zip = build_app_zip(package_dir)
        except SdkCommandError as err:
            print(err)
            return 1
        with zipfile.ZipFile(app_zip) as archive:
            contents = ", ".join(sorted(archive.namelist()))
        print("resilient-sdk validate: no critical issue, no warning; resilient-sdk package built {0}: {1}".format(
            os.path.basename(app_zip), contents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
