# -*- coding: utf-8 -*-
"""The deployed tests' parts, started once per test run: the ActiveMQ broker and the SOAR simulator.

Each test starts its own `resilient-circuits` processes (tests/support/circuits_process.py) and SMTP
receiver; ``replicas`` starts several at once (in parallel) and stops every one at the end.
"""

import concurrent.futures
import signal

import pytest

from tests.support.smtp_server import free_port
from tests.support.activemq import ActiveMqBroker
from tests.support.circuits_process import CircuitsProcess, app_config_text
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


class Replicas:
    """Starts `resilient-circuits run` processes against the broker and simulator; stops them all."""

    def __init__(self, folder, broker, soar, ca_file):
        self.folder, self.broker, self.soar, self.ca_file = folder, broker, soar, ca_file
        self.processes = []

    def start(self, count, smtp_port, **config):
        started = []
        for number in range(count):
            folder = self.folder / "replica{0}".format(len(self.processes) + 1)
            folder.mkdir()
            text = app_config_text(self.soar.port, self.broker.port, self.ca_file, smtp_port, **config)
            process = CircuitsProcess(folder, text).start()
            self.processes.append(process)
            started.append(process)
        # they start in parallel; each must say it subscribed to the message destination
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda process: process.wait_subscribed(), started))
        return started

    def stop_all(self):
        # a test ends its replicas itself when it means to; whatever still runs is killed at once
        for process in self.processes:
            process.signal(signal.SIGKILL)
        for process in self.processes:
            process.stop()


@pytest.fixture
def replicas(tmp_path, broker, soar, tls_pki):
    running = Replicas(tmp_path, broker, soar, tls_pki.ca_file)
    try:
        yield running
    finally:
        running.stop_all()
