"""The fingerprints of the keys every instance of the service must share.

Revision ID: 0700
Revises: 0600
Create Date: 2026-12-05 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0700"
down_revision = "0600"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_key_fingerprints",
        sa.Column("role", sa.String(length=60), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_shared_key_fingerprints")),
    )


def downgrade() -> None:
    op.drop_table("shared_key_fingerprints")
