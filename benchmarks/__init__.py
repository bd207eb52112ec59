# -*- coding: utf-8 -*-
"""Benchmarks of fn_outbound_email's send path against the limits of its issue 6.

Run from the repository root (not part of the test run, not installed with the package):

    python -m benchmarks            # a table: figure, measured, target, pass/fail
    python -m benchmarks --json     # the same, one JSON object on the last line

Each figure is measured side by side with its reference in the same run, on this machine:

* ``send_ratio``: send_email2's path (shipped template rendered over the bundled sample incident, composed,
  sent over SMTP) per message, divided by raw smtplib sending a pre-composed message of the same size on a
  fresh connection to the same local aiosmtpd server.
* ``rest_calls_per_send``: SOAR REST calls of one templated send after the first.
* ``memory_ratio``: peak RSS increase while sending a 25 MiB attachment, divided by 25 MiB (in a subprocess).
* ``rest_time_ratio``: a templated send with 4 attachments through a SOAR stand-in that answers each REST call
  after 50 ms, divided by making the same REST calls one after another.
* ``smime_ratio``: the app signing and encrypting a 10 MiB message, divided by ``openssl smime -sign`` then
  ``openssl smime -encrypt`` on the same input.
"""
