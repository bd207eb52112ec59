# -*- coding: utf-8 -*-
"""Shared test configuration.

pytest-resilient-circuits needs a SOAR host, org and credentials even with a
mock SOAR; these values point at nothing real.
"""

import os

import tests.soar_mock  # noqa: F401  (snapshots the mock endpoints before any test module subclasses)

os.environ.setdefault("TEST_RESILIENT_APPLIANCE", "soar.example.invalid")
os.environ.setdefault("TEST_RESILIENT_ORG", "Test Organization")
os.environ.setdefault("TEST_RESILIENT_USER", "tester@example.com")
os.environ.setdefault("TEST_RESILIENT_PASSWORD", "not-a-real-password")
