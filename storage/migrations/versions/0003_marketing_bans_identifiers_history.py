"""marketing bans: identifiers, history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:16:25.026970

A ban can be on an identifier nobody's customer record holds (kind, value, keyed hash), keeps
the detector's confidence and keyed hashes of a banned customer's identifiers (to outlive an
erasure), and every status change is kept in marketing_ban_changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "marketing_ban_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ban_id", sa.Integer(), nullable=False),
        sa.Column("old_status", sa.String(length=16), nullable=True),
        sa.Column("new_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source_interaction_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ban_id"],
            ["marketing_bans.id"],
            name=op.f("fk_marketing_ban_changes_ban_id_marketing_bans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_ban_changes")),
    )
    with op.batch_alter_table("marketing_ban_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_marketing_ban_changes_ban_id"), ["ban_id"], unique=False)
    op.create_table(
        "marketing_ban_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ban_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["ban_id"],
            ["marketing_bans.id"],
            name=op.f("fk_marketing_ban_identifiers_ban_id_marketing_bans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_ban_identifiers")),
    )
    with op.batch_alter_table("marketing_ban_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_marketing_ban_identifiers_ban_id"), ["ban_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_marketing_ban_identifiers_hash"), ["hash"], unique=False)
    with op.batch_alter_table("marketing_bans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identifier_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("identifier_value", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("confidence", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "updated_at",
                storage.base.DateTimeUTC(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("marketing_bans", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("confidence")
        batch_op.drop_column("identifier_value")
        batch_op.drop_column("identifier_kind")
    with op.batch_alter_table("marketing_ban_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketing_ban_identifiers_hash"))
        batch_op.drop_index(batch_op.f("ix_marketing_ban_identifiers_ban_id"))
    op.drop_table("marketing_ban_identifiers")
    with op.batch_alter_table("marketing_ban_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketing_ban_changes_ban_id"))
    op.drop_table("marketing_ban_changes")
