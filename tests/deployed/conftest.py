# -*- coding: utf-8 -*-
"""The deployed tests' parts, started once per test run: the ActiveMQ broker and the SOAR simulator.

Each test starts its own `resilient-circuits` processes (tests/support/circuits_process.py) and SMTP
receiver; ``replicas`` starts several at once (in parallel) and stops every one at the end.
"""

import pytest

from tests.support.smtp_server import free_port
from tests.support.activemq import ActiveMqBroker
from tests.support.circuits_process import Replicas
from tests.support.soar_simulator import ORG_ID, SoarSimulator
from tests.support.stomp_publisher import StompPublisher


@pytest.fixture(scope="session")
def broker(tmp_path_factory, tls_pki):
    """ActiveMQ with STOMP over TLS (a certificate from the test CA). Missing ActiveMQ fails, never skips."""
    with ActiveMqBroker(tmp_path_factory.mktemp("activemq"), ca=tls_pki.ca) as running:
        yield running


@pytest.fixture(scope="session")
def soar(tls_pki):
    with SoarSimulator(tls_pki.context, free_port()) as simulator:
        yield simulator


@pytest.fixture
def publisher(broker, tls_pki):
    with StompPublisher(broker.port, tls_pki.ca_file, ORG_ID) as running:
        yield running


@pytest.fixture
def replicas(tmp_path, broker, soar, tls_pki):
    running = Replicas(tmp_path, broker, soar, tls_pki.ca_file)
    try:
        yield running
    finally:
        running.stop_all()
