"""SMTP, one layer per module: session (deadline, bounded replies), tls, explain (failures in words an
administrator can act on), transaction (MAIL, RCPT, DATA or BDAT, PIPELINING), pool, and the transport."""
