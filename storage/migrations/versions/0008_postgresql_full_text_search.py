"""PostgreSQL full-text search

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 20:30:00

On PostgreSQL, `interaction_fts` is a plain table (the interaction id as `rowid`, its subject,
body and participants) with a generated `document` tsvector, the text stemmed in Finnish,
Swedish and English, under a GIN index. SQLite has had its FTS5 table since 0001: nothing to do.
Only the first 200,000 characters of a body are indexed: a tsvector holds at most 1 MB, and a
longer text must not make its mail fail to store.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TEXT = "left(subject, 2000) || ' ' || left(body, 200000) || ' ' || left(participants, 20000)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    document = " || ".join(
        f"to_tsvector('{cfg}'::regconfig, {TEXT})" for cfg in ("finnish", "swedish", "english")
    )
    op.execute(
        "CREATE TABLE interaction_fts ("
        " rowid INTEGER NOT NULL"
        "  CONSTRAINT pk_interaction_fts PRIMARY KEY"
        "  CONSTRAINT fk_interaction_fts_rowid_interactions REFERENCES interactions (id) ON DELETE CASCADE,"
        " subject TEXT NOT NULL DEFAULT '',"
        " body TEXT NOT NULL DEFAULT '',"
        " participants TEXT NOT NULL DEFAULT '',"
        f" document TSVECTOR GENERATED ALWAYS AS ({document}) STORED)"
    )
    op.execute("CREATE INDEX ix_interaction_fts_document ON interaction_fts USING gin (document)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE interaction_fts")
