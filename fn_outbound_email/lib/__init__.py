# -*- coding: utf-8 -*-
"""The send pipeline of fn_outbound_email, one subpackage per concern (doc/architecture.md has the picture).

- ``mailer.py``: the pipeline itself: validate a request, render, fetch attachments, compose, protect, deliver.
- ``templates/``: Jinja in a sandbox: ``render`` (the environment), ``helper`` (``template_helper``, the names
  templates call), ``check`` (warnings for authors), ``limits`` (time and size budgets), ``sanitize`` (safe_html),
  ``worker`` (rendering in worker processes with hard limits: the renderer sends and the CLI use),
  ``worker_pool`` (the processes, warm and replaced) and ``worker_main`` (the worker process itself).
- ``message/``: the MIME message: ``compose``, ``header_policy`` (the email package's policies and the check of
  every header line it writes), ``addresses`` (parsing and header checks), ``plain_text`` (the text
  alternative of an HTML body), ``smime``.
- ``delivery/``: getting a composed message to its recipients: ``base.py`` (the one Transport interface:
  retries, the uncertain-after-sending rule, the DeliveryReport) and one module or package per way of
  sending (``smtp/``, split by layer: session, tls, transaction, pool, explain, transport; ``graph`` and
  ``gmail_api``, the Microsoft Graph and Gmail API transports, over ``http_api``).
- ``soar/``: SOAR's side: ``client`` (incident reads over REST), ``download`` (attachment contents, within one
  byte budget per send and a deadline each), ``startup`` (the start-up customizations), ``invocation`` (the
  function invocation behind a call, from its STOMP message: the Message-ID it derives, redeliveries) and
  ``graceful_stop`` (SIGTERM lets sends in flight finish and be answered).
- ``auth/``: credentials: ``password`` (SMTP AUTH), ``oauth2`` (tokens), ``xoauth2`` (SMTP login with them),
  ``keys`` (certificates and service-account keys that sign OAuth2 assertions).
- ``settings.py`` (app.config) and ``errors.py`` (the error types): used by all of the above.

A new transport: a module in ``delivery/`` whose class subclasses ``delivery.base.Transport`` and implements
``attempt`` and ``check_connection``; ``delivery.factory.build_transport`` picks it. A new template helper: a method of
``templates.helper.TemplateHelper``. The layers are checked by ``lint-imports`` (.importlinter).
"""
