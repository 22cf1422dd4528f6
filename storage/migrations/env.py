"""Alembic environment: runs on the connection the app hands over (see storage/migrate.py)."""

from __future__ import annotations

from alembic import context

from storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the app's own runner is supported
    raise RuntimeError("run migrations through storage.migrate.upgrade() or `kirjuri migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
