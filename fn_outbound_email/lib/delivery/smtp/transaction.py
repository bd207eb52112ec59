# -*- coding: utf-8 -*-
"""One SMTP mail transaction on an open session: MAIL FROM, RCPT TO, and the message by DATA or BDAT.

Round trips are what a user waits for: PIPELINING (RFC 2920) sends the envelope in one write and CHUNKING
(RFC 3030) sends the message without dot-stuffing; with both, a small message goes in the same write as
the envelope. Once the message data is out the server may have it, so a failure from then on is uncertain
(lib/delivery/base.py: never sent again).
"""

import re
import smtplib
import time

from fn_outbound_email.lib.delivery.base import uncertain_error
from fn_outbound_email.lib.delivery.smtp.explain import connection_error, server_address
from fn_outbound_email.lib.delivery.smtp.session import abandon_transaction, note_step
from fn_outbound_email.lib.errors import DeliveryError, smtp_reply_text, transient_code

DATA_CHUNK_BYTES = 1 << 20     # the message is sent in pieces of about this size
# with PIPELINING and CHUNKING a message up to this size goes out in the same write as MAIL FROM and RCPT TO
# (BDAT ... LAST): the whole transaction in one round trip. A bigger one waits for the envelope's answers
# first, so a refused sender or recipient list does not cost sending megabytes for nothing.
INLINE_MESSAGE_BYTES = 256 * 1024
# the message data gets smtp_conn_timeout plus the time it needs at this (slow uplink) rate
DATA_MIN_BYTES_PER_SECOND = 64 * 1024
_LINE_STARTING_WITH_DOT = re.compile(rb"(?m)^\.")


def _check_reset(reply):
    """A pooled session's RSET must be answered 250; else the session is out of step (raised, so it is closed)."""
    code, text = reply
    if code != 250:
        raise smtplib.SMTPResponseException(code, text)


class MailTransaction:
    """The transactions of one SMTP transport's sessions (``settings``: the server and its deadlines)."""

    def __init__(self, settings):
        self._settings = settings

    @property
    def server(self):
        return server_address(self._settings)

    def _connection_error(self, err, doing, progress=None):
        return connection_error(err, doing, self._settings, progress)

    def run(self, smtp, envelope_from, recipients, message, smtputf8=False, quit_after=True, reset_first=False):
        """MAIL, RCPT for each recipient and, when any is accepted, the message; QUIT too when ``quit_after``;
        RSET before MAIL when ``reset_first`` (a pooled session), in the same write with PIPELINING.

        With PIPELINING (RFC 2920) the envelope goes in one write (MAIL, every RCPT, DATA) and the replies are
        read in order; the message's final dot and QUIT go in one write too. With CHUNKING (RFC 3030) the
        message goes as BDAT ... LAST (no 354 to wait for, no dot-stuffing), and with both a small message
        joins the envelope's write: one round trip for the whole transaction.
        Returns (accepted recipients, {refused recipient: (code, reason)}); raises DeliveryError for a failure
        of the whole transaction.
        """
        pipelining = smtp.has_extn("pipelining")
        chunking = smtp.has_extn("chunking")
        quit_with_message = b"QUIT\r\n" if pipelining and quit_after else b""
        try:
            options = self._mail_options(smtp, envelope_from, recipients, message, smtputf8)
            if pipelining and chunking and len(message) <= INLINE_MESSAGE_BYTES:
                return self._one_write_transaction(smtp, envelope_from, options, recipients, message, smtputf8,
                                                   quit_with_message, reset_first)
            if pipelining:
                mail, rcpts, data = self._pipelined_envelope(smtp, envelope_from, options, recipients, smtputf8,
                                                             "" if chunking else "DATA", reset_first=reset_first)
            else:
                if reset_first:
                    _check_reset(smtp.rset())
                mail, rcpts, data = self._classic_envelope(smtp, envelope_from, options, recipients,
                                                           data_command=not chunking)
            accepted, refused = self._check_envelope(smtp, envelope_from, message, mail, rcpts, data,
                                                     expect_data=not chunking)
            if not accepted:
                return accepted, refused
        except DeliveryError:
            raise
        except Exception as err:
            smtp.close()
            raise self._connection_error(err, "sending to", getattr(smtp, "progress", None))

        # from here on the server may have the message: failures are uncertain, never retried
        # the data gets a deadline of its own: a big message over a slow link needs longer than a command
        self._set_data_deadline(smtp, message)
        try:
            if chunking:
                self._send_bdat(smtp, message, quit_with_message)
            else:
                self._send_data(smtp, message, quit_with_message)
            code, reply = smtp.getreply()
        except Exception as err:
            smtp.close()
            raise self._uncertain(err)
        if quit_with_message:
            self._end_pipelined_session(smtp)
        self._check_message_reply(code, reply)
        return accepted, refused

    def _one_write_transaction(self, smtp, envelope_from, options, recipients, message, smtputf8, after,
                               reset_first=False):
        """PIPELINING and CHUNKING with a small message: MAIL, every RCPT, BDAT ... LAST, the message (and QUIT)
        in one write.

        RFC 3030 lets BDAT and its chunk be pipelined, and a server reads the chunk whatever it answers, so a
        refused sender or recipient list costs only the chunk's bytes (at most INLINE_MESSAGE_BYTES). The message
        is out with that first write, so a connection lost before the replies are read is an uncertain delivery.
        """
        self._set_data_deadline(smtp, message)
        try:
            mail, rcpts, last = self._pipelined_envelope(smtp, envelope_from, options, recipients, smtputf8,
                                                         "BDAT {0} LAST".format(len(message)), message + after,
                                                         reset_first)
        except Exception as err:
            smtp.close()
            raise self._uncertain(err)
        if after and last is not None:
            self._end_pipelined_session(smtp)
        # a refused sender or recipient list means the chunk was refused too (503): nothing was delivered
        accepted, refused = self._check_envelope(smtp, envelope_from, message, mail, rcpts, None, expect_data=False)
        if accepted:
            self._check_message_reply(*last)
        return accepted, refused

    def _set_data_deadline(self, smtp, message):
        smtp.deadline = time.monotonic() + self._settings.timeout + len(message) / DATA_MIN_BYTES_PER_SECOND

    def _uncertain(self, err):
        return uncertain_error("SMTP server {0}".format(self.server), err)

    @staticmethod
    def _check_message_reply(code, reply):
        if code != 250:
            raise DeliveryError("The SMTP server did not accept the message: {0}".format(smtp_reply_text(code, reply)),
                                transient=transient_code(code), smtp_code=code)

    @staticmethod
    def _classic_envelope(smtp, envelope_from, options, recipients, data_command=True):
        """MAIL, RCPT, DATA one at a time, each after the reply to the one before: ((code, reply) of MAIL,
        [(recipient, code, reply)], (code, reply) of DATA or None when it was not sent). Without
        ``data_command`` (the message goes as BDAT) the envelope ends after the RCPTs."""
        mail = smtp.mail(envelope_from, options)
        if mail[0] != 250:
            return mail, [], None
        rcpts = []
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            rcpts.append((recipient, code, reply))
            if code == 421:
                return mail, rcpts, None
        if not data_command or not any(code in (250, 251) for _, code, _ in rcpts):
            return mail, rcpts, None
        return mail, rcpts, smtp.docmd("DATA")

    @staticmethod
    def _pipelined_envelope(smtp, envelope_from, options, recipients, smtputf8, last_command="DATA", tail=b"",
                            reset_first=False):
        """MAIL, every RCPT and ``last_command`` (DATA, a BDAT, or none) in one write with ``tail`` after it,
        then their replies in order (as _classic_envelope returns; the last is that of ``last_command``).
        With ``reset_first`` an RSET leads the group (RFC 2920 lets it be pipelined): a pooled session's reset
        costs no round trip of its own.

        DATA or BDAT ends the group, the only place RFC 2920 allows DATA. AUTH is never part of a group: its
        outcome changes the session's state, which RFC 2920 section 3.1 asks a client to wait for, as for EHLO;
        it is paid once per session, and a pooled session does not pay it again.
        """
        lines = ["RSET"] if reset_first else []
        lines.append("MAIL FROM:{0}{1}".format(smtplib.quoteaddr(envelope_from), "".join(" " + o for o in options)))
        lines += ["RCPT TO:{0}".format(smtplib.quoteaddr(recipient)) for recipient in recipients]
        if last_command:
            lines.append(last_command)
        if any("\r" in line or "\n" in line for line in lines):       # as smtplib's putcmd refuses
            raise ValueError("An envelope address contains a line break")
        smtp.send("".join(line + "\r\n" for line in lines).encode("utf-8" if smtputf8 else "ascii") + tail)
        progress = getattr(smtp, "progress", None)
        note_step(progress, lines[0])       # the replies come in order: the first command's first
        if reset_first:
            _check_reset(smtp.getreply())
            note_step(progress, lines[1])
        mail = smtp.getreply()
        rcpts = []
        if mail[0] == 421:
            return mail, rcpts, None              # the server is closing: no more replies come
        for recipient in recipients:
            code, reply = smtp.getreply()
            rcpts.append((recipient, code, reply))
            if code == 421:
                return mail, rcpts, None
        return mail, rcpts, smtp.getreply() if last_command else None

    def _check_envelope(self, smtp, envelope_from, message, mail, rcpts, data, expect_data=True):
        """Raise for a refused sender or DATA; (accepted, refused) otherwise, the transaction abandoned (RSET)
        when no recipient was accepted. Without ``expect_data`` (BDAT) there is no DATA reply to check."""
        if data is not None and data[0] == 354 and (mail[0] != 250 or not any(c in (250, 251) for _, c, _ in rcpts)):
            # a server that invites the data of a transaction it refused gets an empty message, which it must refuse
            smtp.send(b".\r\n")
            data = smtp.getreply()
        code, reply = mail
        if code != 250:
            abandon_transaction(smtp, code)
            if code == 552:
                raise DeliveryError("The SMTP server refused the message of {0} bytes as too big at MAIL FROM: "
                                    "{1}".format(len(message), smtp_reply_text(code, reply)), smtp_code=code)
            raise DeliveryError("The SMTP server refused the sender {0}: {1}".format(
                envelope_from, smtp_reply_text(code, reply)), transient=transient_code(code), smtp_code=code)
        accepted, refused = [], {}
        for recipient, code, reply in rcpts:
            if code in (250, 251):
                accepted.append(recipient)
            elif code == 421:
                abandon_transaction(smtp, code)
                raise DeliveryError("The SMTP server {0} is closing the connection: {1}".format(
                    self.server, smtp_reply_text(code, reply)), transient=True, smtp_code=code)
            else:
                refused[recipient] = (code, smtp_reply_text(code, reply))
        if not accepted:
            abandon_transaction(smtp, data[0] if data else code)
            return accepted, refused
        if not expect_data:
            return accepted, refused
        code, reply = data
        if code != 354:
            abandon_transaction(smtp, code)
            raise DeliveryError("The SMTP server refused DATA: {0}".format(smtp_reply_text(code, reply)),
                                transient=transient_code(code), smtp_code=code)
        return accepted, refused

    @staticmethod
    def _end_pipelined_session(smtp):
        """Read the reply to the QUIT sent with the final dot and close; the outcome is already known."""
        try:
            smtp.getreply()
        except (smtplib.SMTPException, OSError):
            pass
        smtp.close()

    def _mail_options(self, smtp, envelope_from, recipients, message, smtputf8):
        """The MAIL FROM parameters (SIZE, SMTPUTF8, BODY); raises when the server cannot take the message."""
        options = []
        if smtp.has_extn("size"):
            limit = smtp.esmtp_features.get("size", "").strip()
            if limit.isdigit() and 0 < int(limit) < len(message):          # SIZE 0: no fixed limit
                raise DeliveryError("The message is {0} bytes, more than the {1} bytes the SMTP server {2} accepts "
                                    "(its EHLO SIZE); send fewer or smaller attachments".format(
                                        len(message), limit, self.server))
            options.append("SIZE={0}".format(len(message)))
        international = [address for address in [envelope_from] + list(recipients) if not address.isascii()]
        if smtputf8 or international:
            if not smtp.has_extn("smtputf8"):
                raise DeliveryError("The SMTP server {0} does not offer SMTPUTF8, which {1} need(s); use ASCII "
                                    "addresses or a server that supports internationalized mail (RFC 6531)".format(
                                        self.server, ", ".join(international) or "the internationalized headers"))
            options.append("SMTPUTF8")
            if not message.isascii() and smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        return options

    @staticmethod
    def _send_bdat(smtp, message, after=b""):
        """The message as one BDAT ... LAST chunk: exactly its octets, no dot-stuffing (RFC 3030), then ``after``."""
        smtp.send("BDAT {0} LAST\r\n".format(len(message)).encode("ascii"))
        for start in range(0, len(message), DATA_CHUNK_BYTES):
            end = start + DATA_CHUNK_BYTES
            smtp.send(message[start:end] + (after if end >= len(message) else b""))

    @staticmethod
    def _send_data(smtp, message, after=b""):
        """Send the message after DATA: dot-stuffed, in line-aligned chunks, the last one with the terminating dot
        and ``after`` (one write for a small message, so the server reads it in one go)."""
        position, size = 0, len(message)
        terminator = b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n"
        while True:
            end = message.find(b"\n", min(position + DATA_CHUNK_BYTES, size) - 1)
            end = size if end == -1 else end + 1
            chunk = _LINE_STARTING_WITH_DOT.sub(b"..", message[position:end])
            if end >= size:
                smtp.send(chunk + terminator + after)
                return
            smtp.send(chunk)
            position = end
