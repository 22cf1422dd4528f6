"""Connectors: protocols in (SMTP, call uploads, chat webhooks), `service.ingest` out.

A connector knows its protocol and nothing about tables. Each is found by the app through
the `kirjuri.connectors` entry point group and offers `setup(app)`.
"""
