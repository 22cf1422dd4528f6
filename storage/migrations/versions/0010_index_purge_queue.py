"""A queue of full-text index merges that deletions owe

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:30:00

An erasure or a retention run deletes documents from the SQLite FTS5 index, which keeps their
terms in older segments until the index is merged. The deleting transaction now queues the
merge in `index_purges`; the merge runs after the commit, while the erased blobs are removed,
and a merge a crash left owing runs on the next start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_purges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queued_at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_purges")),
    )


def downgrade() -> None:
    op.drop_table("index_purges")
