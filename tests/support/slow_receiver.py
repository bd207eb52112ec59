# -*- coding: utf-8 -*-
"""An SMTP receiver that keeps each mail and only then, ``delay`` seconds later, answers DATA with 250.

A sender stopped in that window is the case that makes a duplicate: the receiver has the mail, the sender
never heard so, and SOAR delivers the invocation again. The replica tests stop replicas while their sends
wait here.
"""

import asyncio

from tests.support.smtp_server import RecordingHandler, SmtpTestServer


class SlowRecordingHandler(RecordingHandler):
    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return answer


def slow_receiver(delay):
    """A SmtpTestServer (not started) that answers DATA ``delay`` seconds after keeping the mail."""
    return SmtpTestServer(handler=SlowRecordingHandler(delay))
