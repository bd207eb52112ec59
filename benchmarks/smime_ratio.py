# -*- coding: utf-8 -*-
"""smime_ratio: the app signing then encrypting a 10 MiB message, divided by openssl doing the same.

The input is one content entity as compose makes it (text plus a random attachment, 10 MiB in all). The
app signs (detached, SHA-256, chain included) and encrypts (AES-256) it with ``smime.protect_entity``;
the reference is ``openssl smime -sign`` (same key, certificate and chain) and then ``openssl smime
-encrypt -aes256`` of that output, each timed as a whole including its process start. The key material
is a throwaway identity (the demo's), kept in a temporary folder that is removed afterwards.
"""

import os
import shutil
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from benchmarks.common import Figure, median
from fn_outbound_email.cli.demo_identity import make_demo_identity
from fn_outbound_email.lib.message import compose

TARGET = 1.5
ENTITY_BYTES = 10 * 1024 * 1024
ROUNDS = 5


def _entity():
    raw = int(ENTITY_BYTES / 1.37)      # base64 with CRLF every 76 characters grows it by 4/3 * 78/76
    return compose.entity_bytes(compose.build_content("The capture is attached.",
                                                      [compose.Attachment("capture.bin", os.urandom(raw))]))


def _write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _openssl(arguments):
    finished = subprocess.run(["openssl"] + arguments, capture_output=True, timeout=300)
    if finished.returncode != 0:
        raise RuntimeError("openssl {0} failed: {1}".format(arguments[:2], finished.stderr.decode()[-500:]))


def measure(rounds=ROUNDS):
    try:
        from fn_outbound_email.lib.message import smime
    except ImportError:
        return Figure("smime_ratio", TARGET, skipped="fn_outbound_email.lib.message.smime is not there yet")
    if shutil.which("openssl") is None:
        return Figure("smime_ratio", TARGET, skipped="openssl is not on PATH")

    demo = make_demo_identity("soar@example.com")
    key, cert, chain = pkcs12.load_key_and_certificates(demo.p12_bundle, demo.password.encode())
    entity = _entity()
    with tempfile.TemporaryDirectory(prefix="outbound-email-bench-") as folder:
        bundle = _write(folder, "sender.p12", demo.p12_bundle)
        cert_path = _write(folder, "sender.pem", cert.public_bytes(serialization.Encoding.PEM))
        key_path = _write(folder, "sender.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        chain_path = _write(folder, "chain.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        entity_path = _write(folder, "entity.eml", entity)
        signed_path, encrypted_path = os.path.join(folder, "signed.eml"), os.path.join(folder, "encrypted.eml")

        identity = smime.load_signing_identity(bundle, demo.password)
        recipients = smime.parse_recipient_certificates(cert.public_bytes(serialization.Encoding.PEM).decode())
        app_times, openssl_times = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            protected = smime.protect_entity(entity, identity=identity, recipients=recipients)
            app_times.append(time.perf_counter() - started)

            started = time.perf_counter()
            _openssl(["smime", "-sign", "-binary", "-md", "sha256", "-in", entity_path, "-signer", cert_path,
                      "-inkey", key_path, "-certfile", chain_path, "-out", signed_path])
            _openssl(["smime", "-encrypt", "-binary", "-aes256", "-in", signed_path, "-out", encrypted_path,
                      cert_path])
            openssl_times.append(time.perf_counter() - started)
        openssl_size = os.path.getsize(encrypted_path)

    app, reference = median(app_times), median(openssl_times)
    return Figure("smime_ratio", TARGET, measured=app / reference,
                  detail="median of {0}: app {1:.0f} ms, openssl {2:.0f} ms for a {3:.1f} MiB entity (output "
                         "{4:.1f} / {5:.1f} MiB)".format(rounds, app * 1000, reference * 1000, len(entity) / 2 ** 20,
                                                       len(protected) / 2 ** 20, openssl_size / 2 ** 20))
