"""login failures and lockout

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:47:36.178558

Wrong passwords in a row per user and a lock until a time: repeated wrong passwords slow
down and then lock the account for a while (API and web UI).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("locked_until", storage.base.DateTimeUTC(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")
