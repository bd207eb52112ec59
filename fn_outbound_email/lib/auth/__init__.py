"""Credentials: password AUTH (password), OAuth2 tokens and XOAUTH2 (oauth2), and the certificates and
service-account keys that sign OAuth2 assertions (keys)."""
