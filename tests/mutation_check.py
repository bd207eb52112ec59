# -*- coding: utf-8 -*-
"""Plant known bugs one at a time and check that the tests catch each one.

    python tests/mutation_check.py            # every mutant
    python tests/mutation_check.py 3 11       # only these
    python tests/mutation_check.py --list

Each mutant replaces one exact piece of the app's source (found exactly once, else the mutant is reported
as stale) in a throwaway copy of the repository, then runs the tests that guard that guarantee there.
A mutant is caught when pytest reports failing tests (exit code 1); a collection or usage error (any other
non-zero code) is reported as an error, not as caught. The copy is deleted afterwards; the working tree is
never touched. A test with no such check, tests/project/test_mutation_check.py, keeps every anchor current.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "fn_outbound_email"
# the statement the log-leak mutants plant (one line, so it fits any indentation)
LOG_LINE = "import logging as _l; _l.getLogger(__name__).{0}({1}) # planted\n"


@dataclass(frozen=True)
class Mutant:
    number: int
    description: str
    path: str                  # relative to the repository
    original: str              # replaced exactly once
    replacement: str
    tests: Tuple[str, ...]     # pytest arguments run against the mutant


MUTANTS = (
    Mutant(1, "Bcc recipients added to Cc", "fn_outbound_email/lib/mailer.py",
           "headers = compose.OuterHeaders(sender=sender, to=to, cc=cc,",
           "headers = compose.OuterHeaders(sender=sender, to=to, cc=cc + bcc,",
           ("tests/functions/test_send_email2.py", "tests/functions/test_send_email.py")),
    Mutant(2, "The subject's header check removed", "fn_outbound_email/lib/mailer.py",
           'subject = check_header_text(request.subject, "mail_subject")',
           "subject = request.subject",
           ("tests/functions/test_bad_inputs.py",)),
    Mutant(3, "Default TLS context CERT_NONE", "fn_outbound_email/lib/delivery/smtp/tls.py",
           "    if ssl_verify is True:\n        return ssl.create_default_context()\n",
           "    if ssl_verify is True:\n        context = ssl.create_default_context()\n"
           "        context.check_hostname = False\n        context.verify_mode = ssl.CERT_NONE\n"
           "        return context\n",
           ("tests/delivery/test_smtp_delivery.py", "tests/functions/test_selftest.py")),
    Mutant(4, "check_hostname off", "fn_outbound_email/lib/delivery/smtp/tls.py",
           "    try:\n        return ssl.create_default_context(cafile=ssl_verify)\n",
           "    try:\n        context = ssl.create_default_context(cafile=ssl_verify)\n"
           "        context.check_hostname = False\n        return context\n",
           ("tests/delivery/test_smtp_delivery.py", "tests/functions/test_selftest.py")),
    Mutant(5, "The sandbox's is_safe_attribute always true", "fn_outbound_email/lib/templates/render.py",
           "        return super().is_safe_attribute(obj, attr, value)",
           "        return True",
           ("tests/functions/test_send_email2.py", "tests/templates/test_templating_and_compose.py")),
    Mutant(6, "template_helper's private attributes exposed", "fn_outbound_email/lib/templates/render.py",
           "return attr in TemplateHelper.TEMPLATE_METHODS",
           "return attr in TemplateHelper.TEMPLATE_METHODS or attr.startswith('_')",
           ("tests/functions/test_send_email2.py", "tests/templates/test_templating_and_compose.py")),
    Mutant(7, "Refused recipients not recorded", "fn_outbound_email/lib/delivery/smtp/transaction.py",
           "refused[recipient] = (code, smtp_reply_text(code, reply))",
           "pass",
           ("tests/functions/test_send_email2.py", "tests/delivery/test_faults.py")),
    Mutant(8, "A failure after DATA marked retryable", "fn_outbound_email/lib/delivery/base.py",
           '"resending".format(peer, err), uncertain=True)',
           '"resending".format(peer, err), transient=True)',
           ("tests/delivery/test_faults.py",)),
    Mutant(9, "A missing attachment name read as a local file", "fn_outbound_email/lib/mailer.py",
           "                    missing.append(name)\n",
           "                    try:\n"
           "                        with open(name, 'rb') as _f:\n"
           "                            chosen.append({'name': name, 'content': _f.read()})\n"
           "                    except OSError:\n"
           "                        missing.append(name)\n",
           ("tests/functions/test_bad_inputs.py", "tests/functions/test_send_email2.py")),
    Mutant(10, "safe_attachment_name keeping the path", "fn_outbound_email/lib/message/compose.py",
           "base = posixpath.basename(ntpath.basename(decoded))",
           "base = decoded",
           ("tests/functions/test_bad_inputs.py", "tests/templates/test_templating_and_compose.py")),
    Mutant(11, "The password logged at login", "fn_outbound_email/lib/auth/password.py",
           "            smtp.auth(mechanism, response)\n",
           "            " + LOG_LINE.format("info", '"login %s %s", self._user, self._password')
           + "            smtp.auth(mechanism, response)\n",
           ("tests/functions/test_log_secrets.py",)),
    Mutant(12, "The password logged in load_settings", "fn_outbound_email/lib/settings.py",
           '    smtp_password = _text(configs, "smtp_password")\n',
           '    smtp_password = _text(configs, "smtp_password")\n'
           "    " + LOG_LINE.format("debug", '"password: %s", smtp_password'),
           ("tests/functions/test_log_secrets.py",)),
    Mutant(13, "An OAuth2 token logged", "fn_outbound_email/lib/auth/oauth2.py",
           '        cache.access_token = answer["access_token"]\n',
           '        cache.access_token = answer["access_token"]\n'
           "        " + LOG_LINE.format("debug", '"token: %s", cache.access_token'),
           ("tests/functions/test_log_secrets.py", "tests/auth/test_oauth2.py")),
    Mutant(14, "The settings dict dumped at debug level", "fn_outbound_email/lib/settings.py",
           "    configs = opts.get(SECTION) or {}\n",
           "    configs = opts.get(SECTION) or {}\n"
           "    " + LOG_LINE.format("debug", '"settings: %s", dict(configs)'),
           ("tests/functions/test_log_secrets.py",)),
)


def anchor_count(mutant, root=ROOT):
    with open(os.path.join(root, mutant.path), encoding="utf-8") as source:
        return source.read().count(mutant.original)


def plant(mutant, root):
    path = os.path.join(root, mutant.path)
    with open(path, encoding="utf-8") as source:
        text = source.read()
    if text.count(mutant.original) != 1:
        raise LookupError("stale mutant: its anchor occurs {0} times in {1}".format(
            text.count(mutant.original), mutant.path))
    with open(path, "w", encoding="utf-8") as target:
        target.write(text.replace(mutant.original, mutant.replacement))


def copy_repository(destination):
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", "venv", "*.egg-info", "build", "dist",
                                    ".pytest_cache", ".tox", "outbox")
    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)


def run_tests(root, tests):
    """pytest's exit code for ``tests`` run on the copy at ``root`` (its package shadows any installed one)."""
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-W", "ignore"] + list(tests)
    run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    return run.returncode, run.stdout[-2000:]


def check(mutant):
    """(verdict, detail): caught, survived, or error."""
    scratch = tempfile.mkdtemp(prefix="mutant-{0}-".format(mutant.number))
    try:
        root = os.path.join(scratch, "repo")
        copy_repository(root)
        try:
            plant(mutant, root)
        except LookupError as err:
            return "error", str(err)
        code, output = run_tests(root, mutant.tests)
        if code == 1:
            return "caught", _failing_test(output)
        if code == 0:
            return "survived", "all of {0} passed".format(" ".join(mutant.tests))
        return "error", "pytest exit code {0}: {1}".format(code, output.strip().splitlines()[-1:] or "")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _failing_test(output):
    failed = [line.split(" ")[1] for line in output.splitlines() if line.startswith("FAILED ")]
    return failed[0] if failed else "tests failed"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("numbers", nargs="*", type=int, help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.numbers or m.number in args.numbers]
    if args.list:
        for mutant in chosen:
            print("{0:>2}  {1}  ({2})".format(mutant.number, mutant.description, mutant.path))
        return 0
    code, output = run_tests(ROOT, sorted({test for mutant in chosen for test in mutant.tests}))
    if code != 0:
        print("the unmutated tests do not pass; fix that first:\n" + output)
        return 2
    results = []
    for mutant in chosen:
        started = time.monotonic()
        verdict, detail = check(mutant)
        results.append(verdict)
        print("{0:>2}  {1:<8}  {2:<48}  {3:>5.0f} s  {4}".format(mutant.number, verdict, mutant.description,
                                                                  time.monotonic() - started, detail), flush=True)
    caught = results.count("caught")
    print("{0} of {1} mutants caught".format(caught, len(results)))
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
