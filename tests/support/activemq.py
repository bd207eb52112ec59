# -*- coding: utf-8 -*-
"""A real ActiveMQ Classic broker (Debian's `activemq` package) for the deployed tests.

The broker runs in the foreground from a config generated here: STOMP over TLS on a free loopback port, a
PKCS#12 keystore made from the test PKI, no persistence, no JMX, no web console. ``ActiveMqBroker`` starts it,
waits (bounded) until its STOMP port takes TLS connections, and stops it (SIGTERM, then SIGKILL).
"""

import os
import shutil
import signal
import subprocess
import time

from tests.support.pki import p12_bytes, tls_server_identity
from tests.support.smtp_server import free_port

ACTIVEMQ_HOME = "/usr/share/activemq"
SLOWNESS = float(os.environ.get("TEST_SLOWNESS", "1"))
START_TIMEOUT = 60 * SLOWNESS
KEYSTORE_PASSWORD = "broker-keystore"

# the Java options /usr/bin/activemq passes on Java > 8; running java directly keeps the broker in the
# foreground, as this test's child (the init script daemonizes and su's to the activemq user)
JAVA_OPENS = ["--add-reads=java.xml=java.logging",
              "--add-opens", "java.base/java.security=ALL-UNNAMED",
              "--add-opens", "java.base/java.net=ALL-UNNAMED",
              "--add-opens", "java.base/java.lang=ALL-UNNAMED",
              "--add-opens", "java.base/java.util=ALL-UNNAMED",
              "--add-opens", "java.naming/javax.naming.spi=ALL-UNNAMED",
              "--add-opens", "java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
              "--add-opens", "java.base/java.util.concurrent=ALL-UNNAMED",
              "--add-opens", "java.base/java.util.concurrent.atomic=ALL-UNNAMED"]

BROKER_XML = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="fn-outbound-email-test" useJmx="false"
          persistent="false" schedulerSupport="false" advisorySupport="false" dataDirectory="{data}">
    <sslContext>
      <sslContext keyStore="file:{keystore}" keyStorePassword="{password}" keyStoreType="pkcs12"/>
    </sslContext>
    <transportConnectors>
      <transportConnector name="stomp+ssl" uri="stomp+ssl://127.0.0.1:{port}?transport.needClientAuth=false"/>
    </transportConnectors>
  </broker>
</beans>
"""

# Debian's broker logs with log4j 1.2: warnings and errors to the broker's output file
LOG4J = """log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d %-5p %c{1} %m%n
"""


def java_command():
    java = shutil.which("java")
    if not java or not os.path.isfile(os.path.join(ACTIVEMQ_HOME, "bin", "activemq.jar")):
        raise RuntimeError("ActiveMQ is not installed: apt-get install activemq (it brings Java); "
                           "the deployed tests need the real broker")
    return java


class ActiveMqBroker:
    """``with ActiveMqBroker(folder, identity) as broker: broker.port`` (STOMP over TLS on 127.0.0.1).

    ``identity`` is the TLS server identity the broker presents (tests/pki.py); by default one for
    localhost/127.0.0.1 from ``ca``.
    """

    def __init__(self, folder, ca=None, identity=None):
        self.folder = folder
        self.identity = identity or tls_server_identity(ca)
        self.port = free_port()
        self.process = None
        self.log_file = os.path.join(str(folder), "activemq.log")

    def _write_config(self):
        folder = str(self.folder)
        keystore = os.path.join(folder, "broker.p12")
        with open(keystore, "wb") as handle:
            handle.write(p12_bytes(self.identity, password=KEYSTORE_PASSWORD.encode()))
        conf = os.path.join(folder, "conf")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "activemq.xml"), "w") as handle:
            handle.write(BROKER_XML.format(data=os.path.join(folder, "data"), keystore=keystore,
                                           password=KEYSTORE_PASSWORD, port=self.port))
        with open(os.path.join(conf, "log4j.properties"), "w") as handle:
            handle.write(LOG4J)
        return conf

    def start(self):
        java = java_command()
        conf = self._write_config()
        # the port free_port() holds is released just before the broker binds it
        from tests.support.smtp_server import take_bound_socket
        held = take_bound_socket(self.port)
        if held is not None:
            held.close()
        command = [java, "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"] + \
            JAVA_OPENS + ["-Dactivemq.home=" + ACTIVEMQ_HOME, "-Dactivemq.base=" + str(self.folder),
                          "-Dactivemq.conf=" + conf, "-Dactivemq.data=" + os.path.join(str(self.folder), "data"),
                          "-Dlog4j.configuration=file:" + os.path.join(conf, "log4j.properties"),
                          "-jar", os.path.join(ACTIVEMQ_HOME, "bin", "activemq.jar"),
                          "start", "xbean:file:" + os.path.join(conf, "activemq.xml")]
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.folder),
                                            start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self):
        """Until a STOMP CONNECT over TLS is answered (the TLS port alone opens before the broker is ready)."""
        import stomp
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("ActiveMQ exited with {0} before taking connections:\n{1}".format(
                    self.process.returncode, self.log_tail()))
            probe = stomp.Connection12([("127.0.0.1", self.port)], reconnect_attempts_max=1, timeout=5)
            probe.set_ssl(for_hosts=[("127.0.0.1", self.port)])        # any certificate: only readiness counts
            try:
                probe.connect("probe", "probe", wait=True)
                probe.disconnect()
                return
            except stomp.exception.StompException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("ActiveMQ did not answer STOMP on port {0} within {1} s:\n{2}".format(
            self.port, START_TIMEOUT, self.log_tail()))

    def log_tail(self, size=4000):
        try:
            with open(self.log_file, "rb") as handle:
                return handle.read()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20 * SLOWNESS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20 * SLOWNESS)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
