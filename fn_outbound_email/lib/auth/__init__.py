"""Credentials: password AUTH (password), OAuth2 tokens (oauth2), AUTH XOAUTH2 with them (xoauth2), and the
certificates and service-account keys that sign OAuth2 assertions (keys)."""
