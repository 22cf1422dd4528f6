"""Kirjuri's storage: SQLAlchemy 2.0 async models and queries, blobs, full-text search, migrations.

Knows nothing of HTTP, SMTP or Whisper; raises only `storage.errors` exceptions at its boundary.
"""
