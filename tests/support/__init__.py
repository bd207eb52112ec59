"""What the tests share: the local servers (SMTP, ESMTP, fault servers, OAuth2 token endpoint, the Microsoft
Graph and Gmail API stand-ins, a forward proxy), the SOAR mock, the test PKI, the MIME oracle and the helpers
that run functions, read logs and build app.config."""
