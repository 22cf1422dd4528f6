"""subject requests, legal holds, rectification history

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:05:11.500421

Subject requests with due dates and reports, legal holds, the history of corrections to
customer records (rectification), the queue of blobs to remove after an erasure commits, and
an index on interactions.raw_blob (which blobs are still referenced).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_deletions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("queued_at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_blob_deletions")),
    )
    op.create_table(
        "subject_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("received_at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("due_at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("completed_at", storage.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=120), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_requests")),
    )
    with op.batch_alter_table("subject_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_requests_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_subject_requests_status"), ["status"], unique=False)

    op.create_table(
        "customer_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_changes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_changes")),
    )
    with op.batch_alter_table("customer_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_changes_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("until", storage.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", storage.base.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("released_at", storage.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_legal_holds_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_legal_holds_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_holds_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_legal_holds_interaction_id"), ["interaction_id"], unique=False)

    # erasure and ingest ask which blobs are still referenced
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_interactions_raw_blob"), ["raw_blob"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_raw_blob"))
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_holds_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_legal_holds_customer_id"))

    op.drop_table("legal_holds")
    with op.batch_alter_table("customer_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_changes_customer_id"))

    op.drop_table("customer_changes")
    with op.batch_alter_table("subject_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_requests_status"))
        batch_op.drop_index(batch_op.f("ix_subject_requests_due_at"))

    op.drop_table("subject_requests")
    op.drop_table("blob_deletions")
