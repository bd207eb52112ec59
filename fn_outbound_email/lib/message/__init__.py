"""The MIME message: composing it (compose), the email package policies that check every header line
(header_policy), checking and parsing addresses (addresses), the HTML
scanner the text part is made with (html_tokens), and S/MIME signing and encryption (smime)."""
