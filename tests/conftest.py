# -*- coding: utf-8 -*-
"""Shared test configuration.

pytest-resilient-circuits needs a SOAR host, org and credentials even with a
mock SOAR; these values point at nothing real.
"""

import os

import tests.support.soar_mock  # noqa: F401  (snapshots the mock endpoints before any test module subclasses)

os.environ.setdefault("TEST_RESILIENT_APPLIANCE", "soar.example.invalid")
os.environ.setdefault("TEST_RESILIENT_ORG", "Test Organization")
os.environ.setdefault("TEST_RESILIENT_USER", "tester@example.com")
os.environ.setdefault("TEST_RESILIENT_PASSWORD", "not-a-real-password")

# resilient-circuits' test-action server binds localhost:8008 when test_port is 0 (the fixture forces 0),
# so two test runs on one machine collide; port 0 lets the OS pick a free port for each app.
from resilient_circuits import actions_test_component  # noqa: E402

actions_test_component.ResilientTestActions.__init__.__defaults__ = ("localhost", 0)


# --- the SMTP server the app of a test module sends to ----------------------------------------------------------
import pytest  # noqa: E402

from tests.support.app_log import app_log  # noqa: E402,F401  (fixture)
from tests.support.smtp_server import SmtpTestServer  # noqa: E402
from tests.support.soar_mock import SoarMock  # noqa: E402


@pytest.fixture(scope="module")
def smtp_server(request):
    """A real SMTP server on the port the module's app.config names (its SMTP_PORT); SMTP_SERVER_OPTIONS, when
    the module has it, passes further SmtpTestServer options (refused recipients ...)."""
    options = getattr(request.module, "SMTP_SERVER_OPTIONS", {})
    with SmtpTestServer(port=request.module.SMTP_PORT, **options) as server:
        yield server


@pytest.fixture
def fault_soar(server):
    """The SOAR mock with scripted faults (tests/support/soar_mock.py FaultSoarMock), reset, for a module whose
    ``resilient_mock`` it is; the SMTP server is reset too."""
    from tests.support.soar_mock import FaultSoarMock
    FaultSoarMock.reset()
    return FaultSoarMock


@pytest.fixture
def server(smtp_server):
    """The module's SMTP server with nothing received yet, and the SOAR call log empty."""
    smtp_server.messages.clear()
    SoarMock.calls.clear()
    return smtp_server


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory):
    """The test CA with server certificates (tests/support/pki.py TlsPki), made once per test run."""
    from tests.support.pki import TlsPki
    return TlsPki(tmp_path_factory.mktemp("tls-pki"))


# a skipped test fails the run unless tests/allowed_skips.txt lists it with its reason
from tests.support.skip_guard import (pytest_runtest_logreport, pytest_sessionfinish,  # noqa: E402,F401
                              pytest_terminal_summary)


@pytest.fixture(autouse=True)
def no_pooled_smtp_sessions():
    """Each test starts and ends without idle SMTP sessions: a session pooled by one test must not serve
    another test's server (tests that check reuse send several mails within one test)."""
    from fn_outbound_email.lib.delivery.smtp.pool import POOL
    POOL.close_all()
    yield
    POOL.close_all()
