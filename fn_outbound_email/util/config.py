# -*- coding: utf-8 -*-
"""Default app.config sections, written by `resilient-circuits config -c|-u`."""


def config_section_data():
    """The commented [fn_outbound_email] and [fn_outbound_email:templates] sections."""
    return u"""[fn_outbound_email]
# How mail leaves: smtp (the default), graph (Microsoft Graph sendMail: Microsoft 365 without SMTP AUTH,
# oauth2_grant = client_credentials) or gmail_api (the Gmail API: oauth2_grant = jwt_bearer)
#transport=smtp
# graph: the Graph endpoint of the tenant's cloud (https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn)
#graph_url=https://graph.microsoft.com
#gmail_api_url=https://gmail.googleapis.com
# Host name or IP address of the SMTP server (required with transport smtp)
smtp_server=xxx.xxx.xxx.xxx
# Port: 25 plain, 587 or 2525 for STARTTLS, 465 for implicit TLS.
# When unset the port follows smtp_ssl_mode (None 25, starttls 587, ssl 465).
#smtp_port=587
# SMTP login; may differ from the sender address
#smtp_user=mail_user@example.com
# Basic-auth password (required with smtp_user unless OAuth2 is configured).
# Prefer a secret: $SMTP_PASSWORD, ^smtp_password (keyring) or a PAM plugin.
#smtp_password=$SMTP_PASSWORD
# Default sender; falls back to smtp_user when that is an address
#from_email_address=soar@example.com
# Seconds one SMTP session may take: connecting, TLS, AUTH and the commands (the message data gets more by its size)
smtp_conn_timeout=20
# starttls (upgrade to TLS after connecting, port 587), ssl (implicit TLS, port 465) or None (plain, port 25)
smtp_ssl_mode=starttls
# TLS certificate check: unset or true = system CA store, a path = that CA bundle,
# false = no verification (not recommended; a warning is logged)
#smtp_ssl_cafile=/path/to/ca_bundle.pem
# Default template for send_email: an absolute path, or relative to the package
template_file=data/templates/example_send_email.jinja
# true: at start-up add the email_conversations table and Email Message-ID field to the Email tab
#enable_email_conversations=false
#
# OAuth2 (XOAUTH2): when client_id is set OAuth2 is used instead of smtp_password.
# Run `outbound-email oauth2-token` once to obtain the refresh_token.
#client_id=
#client_secret=$SMTP_CLIENT_SECRET
#scope=https://mail.example.com/
#token_url=https://login.example.com/oauth2/token
#auth_url=https://login.example.com/oauth2/auth
#refresh_token=$SMTP_REFRESH_TOKEN
# The grant that gets the access tokens: refresh_token (the default: a mailbox's sign-in, above),
# client_credentials (app-only: Microsoft 365 SMTP.SendAsApp, with client_secret or client_certificate)
# or jwt_bearer (a Google service account with domain-wide delegation).
#oauth2_grant=refresh_token
# client_credentials: a PEM file with the private key and the certificate uploaded to the app registration
# (instead of client_secret); the password when the key is encrypted.
# Microsoft 365: token_url=https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token
#                scope=https://outlook.office365.com/.default
#client_certificate=/path/to/app_certificate_and_key.pem
#client_certificate_password=$SMTP_CLIENT_CERT_PASSWORD
# jwt_bearer: the service account's JSON key (its token_uri is the token_url); scope=https://mail.google.com/
#service_account_file=/path/to/service_account.json
# The mailbox to send as (XOAUTH2 user) with client_credentials or jwt_bearer; default smtp_user,
# else from_email_address.
#oauth2_subject=soar@example.com
#
# S/MIME: PKCS#12 bundle (DER or base64) with the sender's key and certificate; enables signing.
# Encryption certificates come per send in mail_encryption_recipients.
#p12_signing_encrypting_cert=/path/to/signing_encrypting_cert.p12
#p12_signing_encrypting_cert_password=$P12_PASSWORD
#
# strftime format for dates rendered by template_helper (default ISO 8601)
#date_format=%Y-%m-%d %H:%M:%S
# Refuse messages larger than this many bytes before connecting (default 25 MiB)
#max_message_size=26214400
# Retries after transient failures (connection errors, 4xx replies); never after the server accepted the message
#smtp_retries=2
# With smtp_ssl_mode None a login is upgraded with STARTTLS, and refused when the server does not offer it;
# true sends the password or OAuth2 token in clear instead (trusted networks only; a warning is logged)
#smtp_allow_plaintext_auth=false
# Keep an idle SMTP session for the next send with the same settings (true), and for how many seconds
#smtp_connection_reuse=true
#smtp_idle_timeout=30
# A template render is stopped after this many seconds (default 10)
#template_timeout=10
# ... or when its output, or any one value it makes, passes this many characters (default 5 MiB)
#template_max_output=5242880
# Templates render in a separate process whose memory (address space) is limited to this many bytes; a
# template needing more is stopped (default 512 MiB, at least 128 MiB)
#template_max_memory=536870912

[fn_outbound_email:templates]
# One template per line: label = path. The labels fill the mail_template_select
# input of the example playbooks at start-up and are what mail_template_label refers to.
#incident_summary=/path/to/incident_summary.jinja
#task_notice=/path/to/task_notice.jinja
"""
