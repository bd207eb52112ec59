"""Getting a composed message to its recipients: the Transport interface every way of sending implements
(base), the choice app.config makes (factory), and one module or package per way of sending (smtp/;
graph and gmail_api over http_api)."""
