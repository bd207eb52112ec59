# -*- coding: utf-8 -*-
"""The app.config of a send through Microsoft Graph or the Gmail API, and the provider side set up for it.

``MailApiSetup(transport, tls_pki, ...)`` starts the test token endpoint (tests/oauth2_server.py) and the local
API (tests/support/mail_api_servers.py), grants what the provider needs (Graph: the Mail.Send role; Google:
domain-wide delegation of gmail.send for MAILBOX), and gives the app.config keys (``values``), ``opts`` and a
ready ``mailer``.
"""

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from resilient_lib import RequestsCommon

from fn_outbound_email.lib.mailer import Mailer
from fn_outbound_email.lib.settings import GMAIL_SEND_SCOPE, SECTION, load_settings
from tests.support import config_section
from tests.support.mail_api_servers import GmailTestServer, GraphTestServer
from tests.support.oauth2_server import CLIENT_ID, CLIENT_SECRET, FakeOAuth2Server

HTTP_TRANSPORTS = ("graph", "gmail_api")
MAILBOX = "soar@example.com"
SERVICE_ACCOUNT = "mail-sender@project-1.iam.gserviceaccount.com"
SERVICE_KEY_ID = "fedcba9876543210fedcba9876543210fedcba98"
_SERVICE_KEY = []         # one RSA key per test run: making one takes a while


def service_key():
    if not _SERVICE_KEY:
        _SERVICE_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _SERVICE_KEY[0]


class MailApiSetup:
    """Context manager: the token endpoint and the API of ``transport``, and the app.config to reach them."""

    def __init__(self, transport, tls_pki, folder, oauth_port=0, api_port=0, tls_context=None):
        self.transport = transport
        self.tls_pki = tls_pki
        self.folder = folder
        self.oauth = FakeOAuth2Server(port=oauth_port)
        server_class = GraphTestServer if transport == "graph" else GmailTestServer
        self.server = server_class(self.oauth, tls_context or tls_pki.context, port=api_port)
        self.oauth.roles = ["Mail.Send"]
        key = service_key()
        self.oauth.register_service_account(SERVICE_ACCOUNT, SERVICE_KEY_ID, key.public_key(),
                                            delegated=[(MAILBOX, GMAIL_SEND_SCOPE)])

    def __enter__(self):
        self.oauth.__enter__()
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info):
        self.server.__exit__(*exc_info)
        self.oauth.__exit__(*exc_info)

    @property
    def values(self):
        """The [fn_outbound_email] keys of this transport (besides the test defaults of tests/config_section.py)."""
        values = {"transport": self.transport, "oauth2_subject": MAILBOX, "verify": self.tls_pki.ca_file,
                  "from_email_address": "SOAR Notifier <{0}>".format(MAILBOX)}
        if self.transport == "graph":
            values.update(graph_url=self.server.base_url, oauth2_grant="client_credentials", client_id=CLIENT_ID,
                          client_secret=CLIENT_SECRET, token_url=self.oauth.token_url)
        else:
            values.update(gmail_api_url=self.server.base_url, oauth2_grant="jwt_bearer",
                          service_account_file=self.service_account_file())
        return values

    def service_account_file(self):
        """The service account's key file as Google's console downloads it, naming this test's token endpoint."""
        path = self.folder / "service-{0}.json".format(self.oauth.port)
        key = service_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
        path.write_text(json.dumps({"type": "service_account", "project_id": "project-1",
                                    "private_key_id": SERVICE_KEY_ID, "private_key": key,
                                    "client_email": SERVICE_ACCOUNT, "client_id": "1098765432101234",
                                    "token_uri": self.oauth.token_url}))
        return str(path)

    def opts(self, **values):
        return config_section.section(1, **dict(self.values, **values))

    def mailer(self, soar=None, **values):
        opts = self.opts(**values)
        return Mailer(load_settings(opts), soar=soar, requests_common=RequestsCommon(opts, opts[SECTION]))
