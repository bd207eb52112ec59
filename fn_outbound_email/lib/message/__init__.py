"""The MIME message: composing it (compose), the email package policies that check every header line
(header_policy), checking and parsing addresses (addresses), the plain-text alternative of an HTML body
(plain_text) and the HTML scanner it is made with (html_tokens), and S/MIME signing and encryption (smime)."""
