# -*- coding: utf-8 -*-
"""The SMTP transport: connect (plain, STARTTLS or implicit TLS), authenticate, run a mail transaction.

It implements lib/delivery/base.py's Transport (retries and the report are there) on top of the layers of
this package: session.py (one deadline per session, bounded replies), tls.py, transaction.py (PIPELINING,
CHUNKING), pool.py (a session is kept for the next send with the same settings unless
``smtp_connection_reuse = false``) and explain.py (what a failure means). Credentials never cross the
network in clear unless app.config says ``smtp_allow_plaintext_auth = true``.
"""

import logging
import smtplib
import socket
import time
from contextlib import contextmanager

from fn_outbound_email.lib.delivery.base import Transport
from fn_outbound_email.lib.delivery.smtp.explain import connection_error, server_address
from fn_outbound_email.lib.delivery.smtp.pool import POOL
from fn_outbound_email.lib.delivery.smtp.session import Progress, Session, SslSession, ehlo_name, quit_session
from fn_outbound_email.lib.delivery.smtp.tls import certificate_names, tls_context, unverified_context
from fn_outbound_email.lib.delivery.smtp.transaction import MailTransaction
from fn_outbound_email.lib.errors import DeliveryError, MailError, smtp_reply_text, transient_code

LOG = logging.getLogger(__name__)


class SmtpTransport(Transport):
    """Connects to the configured server and delivers prepared messages."""

    protocol = "SMTP"

    def __init__(self, settings, authenticator=None):
        super().__init__(settings)
        self._authenticator = authenticator
        self._transaction = MailTransaction(settings)

    @property
    def server(self):
        return server_address(self._settings)

    def attempt(self, envelope_from, recipients, message, smtputf8):
        """One transaction on a pooled session (or a fresh one); the session goes back to the pool after it when
        the transaction delivered to someone."""
        reuse = self._settings.connection_reuse
        pooled = self._pooled_session() if reuse else None
        smtp = pooled or self._connect()
        try:
            result = self._transaction.run(smtp, envelope_from, recipients, message, smtputf8, quit_after=not reuse,
                                           reset_first=pooled is not None)
        except BaseException:
            quit_session(smtp)
            raise
        accepted, _ = result
        if smtp.sock is None:           # the QUIT went with the message
            pass
        elif reuse and accepted:
            POOL.give_back(self._pool_key(), smtp, self._settings.idle_seconds)
        else:
            # a transaction that delivered nothing is not a session to keep: a server's penalty for errors
            # (Postfix smtpd_error_sleep_time) stays with the connection
            quit_session(smtp)
        return result

    def _pooled_session(self):
        """An idle session of these settings with nothing unread, or None.

        A session with bytes nobody asked for (an extra reply would shift every reply after it: a refused
        recipient read as accepted) or that the server closed while it was idle is closed here and the next
        one tried, before anything is sent on it. Its RSET then goes in the transaction's first write.
        """
        while True:
            smtp = POOL.take(self._pool_key())
            if smtp is None:
                return None
            if smtp.has_unread_input():
                LOG.debug("Not reusing an idle SMTP session to %s: the server sent something unasked or closed it",
                          self.server)
                smtp.close()
                continue
            smtp.deadline = time.monotonic() + self._settings.timeout      # a new deadline for this use
            return smtp

    def _pool_key(self):
        """What makes two sessions interchangeable: the server, its TLS checks, whether a login in clear was
        allowed, and who is logged in (with every setting of the login: its identity)."""
        settings = self._settings
        identity = getattr(self._authenticator, "identity", None)
        return (settings.smtp_server, settings.smtp_port, settings.ssl_mode, settings.ssl_verify,
                settings.allow_plaintext_auth, identity() if identity else None)

    def check_connection(self):
        """Connect, negotiate TLS, authenticate, NOOP and QUIT: what selftest needs. Sends nothing."""
        with self.session() as smtp:
            try:
                code, reply = smtp.noop()
            except Exception as err:
                smtp.close()
                raise self._connection_error(err, "talking to", smtp.progress)
            if code != 250:
                raise DeliveryError("The SMTP server answered NOOP with {0}".format(smtp_reply_text(code, reply)),
                                    smtp_code=code)

    @contextmanager
    def session(self):
        """A connected, TLS-negotiated, authenticated SMTP session; QUIT on exit while the exchange is in step
        (every failure that breaks it closes the connection first)."""
        smtp = self._connect()
        try:
            yield smtp
        finally:
            quit_session(smtp)

    # --- connection -----------------------------------------------------------------------------------
    def _open(self, context, progress):
        """Connected and greeted (TLS negotiated in ssl mode), deadline set; raises what smtplib raises."""
        settings = self._settings
        deadline = time.monotonic() + settings.timeout
        # host given to the constructor (which connects): smtplib keeps it for TLS server_hostname checks
        if settings.ssl_mode == "ssl":
            return SslSession(deadline, progress, settings.smtp_server, settings.smtp_port,
                               local_hostname=ehlo_name(), timeout=settings.timeout, context=context)
        return Session(deadline, progress, settings.smtp_server, settings.smtp_port, local_hostname=ehlo_name(),
                        timeout=settings.timeout)

    def _connect(self):
        settings = self._settings
        progress = Progress()
        context = tls_context(settings.ssl_verify) if settings.ssl_mode != "none" or self._authenticator else None
        try:
            smtp = self._open(context, progress)
        except smtplib.SMTPConnectError as err:
            raise DeliveryError("The SMTP server {0} greeted with {1}".format(
                self.server, smtp_reply_text(err.smtp_code, err.smtp_error)),
                transient=transient_code(err.smtp_code), smtp_code=err.smtp_code)
        except Exception as err:
            raise self._connection_error(err, "connecting to", progress)
        try:
            # the message and its final dot are two writes with no reply between: with Nagle on, the dot waits
            # for the server's delayed ACK (measured: 44 ms per message on loopback, 1.2 ms without)
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo_or_helo_if_needed()
            if self._needs_starttls(smtp):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._authenticator is not None:
                self._authenticator.authenticate(smtp)
            return smtp
        except MailError:              # DeliveryError, or the authenticator's own (OAuth2Error): reason kept as is
            quit_session(smtp)
            raise
        except Exception as err:
            smtp.close()
            raise self._connection_error(err, "talking to", progress)

    def _needs_starttls(self, smtp):
        """STARTTLS when configured, and (smtp_ssl_mode None) before sending credentials; raises when the server
        cannot give the protection required."""
        settings = self._settings
        if settings.ssl_mode == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError("The SMTP server {0} does not offer STARTTLS; set smtp_ssl_mode to ssl (port "
                                    "465) or None".format(self.server))
            return True
        if settings.ssl_mode != "none" or self._authenticator is None:
            return False
        if smtp.has_extn("starttls"):
            LOG.info("smtp_ssl_mode is None but credentials are configured: upgrading the connection to %s with "
                     "STARTTLS before AUTH", self.server)
            return True
        if settings.allow_plaintext_auth:
            LOG.warning("The SMTP server %s does not offer STARTTLS: the credentials of smtp_user cross the network "
                        "in clear (smtp_allow_plaintext_auth = true)", self.server)
            return False
        raise DeliveryError("The SMTP server {0} does not offer STARTTLS, so the credentials would cross the network "
                            "in clear; nothing was sent. Set smtp_ssl_mode = ssl (implicit TLS, usually port 465) or "
                            "starttls if the server has TLS on another port, or, on a trusted network only, "
                            "smtp_allow_plaintext_auth = true".format(self.server))

    def _connection_error(self, err, doing, progress=None):
        return connection_error(err, doing, self._settings, progress, self._presented_names)

    def _presented_names(self):
        """The names in the server's certificate, read in a second handshake that checks nothing and is followed
        by QUIT only: a handshake that failed its host-name check does not expose the certificate."""
        context = unverified_context()
        try:
            smtp = self._open(context, Progress())
            try:
                if self._settings.ssl_mode != "ssl":
                    smtp.ehlo()
                    smtp.starttls(context=context)
                der = smtp.sock.getpeercert(binary_form=True)
            finally:
                quit_session(smtp)
            return certificate_names(der)
        except Exception as err:            # only a hint: the error stays the host-name mismatch
            LOG.debug("Could not read the SMTP server's certificate names: %s", err)
            return []

