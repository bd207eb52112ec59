# -*- coding: utf-8 -*-
"""The one delivery interface: a composed message to an envelope, a per-recipient report back.

Every way of sending (SMTP; the Microsoft Graph and Gmail API transports, graph.py and gmail_api.py over
http_api.py) subclasses ``Transport`` and implements one attempt (``attempt``) and the connection check
selftest runs (``check_connection``). What a send does around the attempts is written here once:
``smtp_retries`` retries of transient failures with doubling backoff (or after the wait the server asks
for), recipients refused for now retried
alone, and the rule that a failure after the message was handed over is uncertain and never resent.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List

from fn_outbound_email.lib.errors import DeliveryError, MailError, transient_code

LOG = logging.getLogger(__name__)

BACKOFF_SECONDS = 2.0          # first retry after 2 s, then 4 s, 8 s ...
# "too many recipients" (RFC 5321 4.5.3.1.10): the server's limit per transaction, not a failure; the client
# sends the rest in the next transaction at once
TOO_MANY_RECIPIENTS = 452


@dataclass
class DeliveryReport:
    """What a send did: the recipients that took the message, and the refused ones with the reason."""
    accepted: List[str] = field(default_factory=list)
    refused: Dict[str, str] = field(default_factory=dict)


def uncertain_error(peer, err):
    """The failure of a send whose message may have arrived: ``uncertain``, so it is never retried."""
    return DeliveryError("The connection to the {0} failed after the message was sent ({1}); delivery is "
                         "uncertain, so it was not sent again: check the recipients' mailboxes before "
                         "resending".format(peer, err), uncertain=True)


class Transport:
    """Delivers composed messages; a subclass implements ``attempt`` and ``check_connection``.

    ``settings`` is the app's Settings (``retries`` is all this class reads); ``protocol`` names the way of
    sending in log lines and errors ("SMTP": "The SMTP server refused every recipient").
    """

    protocol = "mail"

    def __init__(self, settings):
        self._settings = settings

    def attempt(self, envelope_from, recipients, message, smtputf8):
        """One try: returns (accepted recipients, {refused recipient: (reply code, reason)}), where a 4xx code
        means "refused for now". Raises DeliveryError for a failure of the whole try: ``transient`` when a
        retry may succeed, ``uncertain`` (see ``uncertain_error``) once the message may have been handed over."""
        raise NotImplementedError

    def check_connection(self):
        """Reach the server and log in without sending anything (selftest); raises DeliveryError."""
        raise NotImplementedError

    def deliver(self, envelope_from, recipients, message, smtputf8=False):
        """Send ``message`` (bytes) to ``recipients``; retry transient failures; return a DeliveryReport.

        ``smtputf8``: the envelope or headers are internationalized (RFC 6531); the server must take them.
        Recipients refused for now (4xx) are retried in a new attempt after the backoff (a greylisting server
        wants the wait); accepted ones never get the message twice. Recipients refused with 452 by an attempt
        that delivered to others are past the server's limit per transaction: they go in the next attempt at
        once, without backoff and without counting as a retry (each such attempt delivered to someone, so
        this ends).
        """
        report = DeliveryReport()
        pending = list(recipients)
        attempt = 0
        while True:
            try:
                accepted, refused = self.attempt(envelope_from, pending, message, smtputf8)
            except MailError as err:     # DeliveryError, or the authenticator's own (OAuth2Error, never transient)
                retry = getattr(err, "transient", False) and not getattr(err, "uncertain", False)
                if retry and attempt < self._settings.retries:
                    attempt += 1
                    self._back_off(attempt, err)
                    continue
                if not report.accepted:
                    raise
                # the message already reached some recipients: the rest are reported, the send is not a failure
                report.refused.update((recipient, str(err)) for recipient in pending)
                return report
            report.accepted.extend(accepted)
            if accepted and any(code == TOO_MANY_RECIPIENTS for code, _ in refused.values()):
                # the rest go at once; those refused for another reason for now come along (the next attempt
                # delivers to someone again, and the last one backs off for them as usual)
                pending = [recipient for recipient, (code, _) in refused.items() if transient_code(code)]
                report.refused.update((recipient, text) for recipient, (code, text) in refused.items()
                                      if not transient_code(code))
                continue
            retry = [recipient for recipient, (code, _) in refused.items() if transient_code(code)] \
                if attempt < self._settings.retries else []
            report.refused.update((recipient, text) for recipient, (_, text) in refused.items()
                                  if recipient not in retry)
            if retry:
                attempt += 1
                pending = retry
                self._back_off(attempt, "{0} recipient(s) refused for now: {1}".format(
                    len(retry), "; ".join("{0}: {1}".format(r, refused[r][1]) for r in retry)))
                continue
            if not report.accepted:
                raise DeliveryError("The {0} server refused every recipient: {1}".format(
                    self.protocol, "; ".join("{0}: {1}".format(k, v) for k, v in report.refused.items())),
                    transient=all(transient_code(code) for code, _ in refused.values()))
            return report

    def _back_off(self, attempt, reason):
        # a server that says when to come back (HTTP 429/503 Retry-After) is taken at its word
        asked = getattr(reason, "retry_after", None)
        delay = BACKOFF_SECONDS * (2 ** (attempt - 1)) if asked is None else asked
        LOG.warning("Transient %s failure (%s); retry %s of %s in %s s",
                    self.protocol, reason, attempt, self._settings.retries, "{0:.1f}".format(delay))
        time.sleep(delay)
