# -*- coding: utf-8 -*-
"""Why an SMTP connection failed, in words an administrator can act on.

Every failure of connecting, TLS or talking to the server becomes one DeliveryError here, with the
app.config setting to change (port and TLS mode mix-ups, untrusted or misnamed certificates, timeouts),
and ``transient`` set where a retry may succeed.
"""

import smtplib
import socket
import ssl

from fn_outbound_email.lib.delivery.smtp.session import ReplyTooLong, TlsRecordReply
from fn_outbound_email.lib.delivery.smtp.tls import HOSTNAME_MISMATCH_CODES, NOT_TLS_REASONS
from fn_outbound_email.lib.errors import DeliveryError, smtp_reply_text, transient_code
from fn_outbound_email.lib.settings import DEFAULT_PORTS


def server_address(settings):
    """host:port of the configured SMTP server, as the messages name it."""
    return "{0}:{1}".format(settings.smtp_server, settings.smtp_port)


def step_text(progress):
    """', waiting for the answer to EHLO' and the like: the step a session hung on."""
    if progress is None:
        return ""
    if progress.step == "STARTTLS":
        return ", at STARTTLS (its answer or the TLS handshake)"
    if progress.step:
        return ", waiting for the answer to {0}".format(progress.step)
    if not progress.reading:
        return ", opening the connection"
    return ""


def connection_error(err, doing, settings, progress=None, presented_names=lambda: []):
    """The DeliveryError for ``err`` raised while ``doing`` ("connecting to", "talking to", "sending to") the
    server; ``progress``: how far the session got; ``presented_names``: reads the certificate's names."""
    server = server_address(settings)
    if isinstance(err, DeliveryError):
        return err
    if isinstance(err, ssl.SSLCertVerificationError):
        if err.verify_code in HOSTNAME_MISMATCH_CODES:
            return name_mismatch_error(err, settings, presented_names())
        return DeliveryError("The TLS certificate of the SMTP server {0} is not trusted ({1}); set "
                             "smtp_ssl_cafile to the CA bundle that issued it".format(
                                 server, err.verify_message or err.reason))
    if isinstance(err, ssl.SSLError):
        if settings.ssl_mode == "ssl" and err.reason in NOT_TLS_REASONS:
            return DeliveryError("The SMTP server {0} answered the TLS handshake in plain text ({1}), so port {2} "
                                 "is not an implicit-TLS port; set smtp_ssl_mode = starttls (usually port 587) or "
                                 "None (port 25)".format(server, err.reason, settings.smtp_port))
        return DeliveryError("TLS with the SMTP server {0} failed: {1}; check smtp_ssl_mode (ssl for port 465, "
                             "starttls for 587) ".format(server, err.reason or err).strip())
    if isinstance(err, TlsRecordReply):
        return DeliveryError("The SMTP server {0} answered in TLS, so port {1} expects implicit TLS; set "
                             "smtp_ssl_mode = ssl (usually port 465)".format(server, settings.smtp_port))
    if isinstance(err, ReplyTooLong):
        return DeliveryError("The SMTP server {0} sent {1}; it is not a working SMTP server (check smtp_server "
                             "and smtp_port)".format(server, err))
    if isinstance(err, socket.gaierror):
        return DeliveryError("The SMTP server name '{0}' cannot be resolved ({1}); check smtp_server".format(
            settings.smtp_server, err.strerror or err))
    if isinstance(err, (socket.timeout, TimeoutError)) or (
            isinstance(err, smtplib.SMTPServerDisconnected) and "timed out" in str(err)):
        if settings.ssl_mode != "ssl" and progress is not None and progress.reading and \
                progress.bytes_received == 0:
            # an implicit-TLS server waits for our TLS handshake and never greets a plain client
            return DeliveryError("Timed out after {0:g} s waiting for the greeting of the SMTP server {1}: it "
                                 "accepted the connection but sent nothing. If port {2} expects implicit TLS, set "
                                 "smtp_ssl_mode = ssl (usually port 465); else raise smtp_conn_timeout".format(
                                     settings.timeout, server, settings.smtp_port), transient=True)
        return DeliveryError("Timed out after {0:g} s {1} the SMTP server {2}{3}; check smtp_server, smtp_port "
                             "and firewalls, or raise smtp_conn_timeout".format(
                                 settings.timeout, doing, server, step_text(progress)), transient=True)
    if isinstance(err, ConnectionRefusedError):
        return DeliveryError("The SMTP server {0} refused the connection; check smtp_server and "
                             "smtp_port{1}".format(server, port_hint(settings)), transient=True)
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return DeliveryError("The SMTP server {0} closed the connection ({1})".format(server, err), transient=True)
    if isinstance(err, smtplib.SMTPResponseException):
        return DeliveryError("The SMTP server {0} answered {1}".format(
            server, smtp_reply_text(err.smtp_code, err.smtp_error)),
            transient=transient_code(err.smtp_code), smtp_code=err.smtp_code)
    if isinstance(err, OSError):
        return DeliveryError("Network error {0} the SMTP server {1}: {2}".format(doing, server, err),
                             transient=True)
    return DeliveryError("SMTP error {0} {1}: {2}".format(doing, server, err))


def port_hint(settings):
    """For a refused connection: the port usually serving the configured TLS mode, when another is set."""
    usual = DEFAULT_PORTS[settings.ssl_mode]
    if settings.smtp_port == usual or settings.smtp_port not in DEFAULT_PORTS.values():
        return ""
    return " (smtp_ssl_mode {0} is usually served on port {1}, not {2}: set smtp_port = {1})".format(
        settings.ssl_mode, usual, settings.smtp_port)


def name_mismatch_error(err, settings, names):
    """The fix of a certificate issued for other names than smtp_server: the names it is issued for."""
    server = server_address(settings)
    if not names:
        return DeliveryError("The TLS certificate of the SMTP server {0} is not issued for '{1}' ({2}); set "
                             "smtp_server to a name the certificate is issued for".format(
                                 server, settings.smtp_server, err.verify_message))
    return DeliveryError("The TLS certificate of the SMTP server {0} is issued for {1}, not for '{2}'; set "
                         "smtp_server to {3} (resolving to this server)".format(
                             server, ", ".join(names), settings.smtp_server,
                             "that name" if len(names) == 1 else "one of those names"))
