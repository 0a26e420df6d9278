"""Signed documents (issue 9): the session's document request, and the documents themselves.

Revision ID: 0200
Revises: 0100
Create Date: 2026-11-26 01:31:27.595264
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0200"
down_revision = "0100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_documents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("unsigned_pdf", sa.LargeBinary(), nullable=False),
        sa.Column("unsigned_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_signed_documents_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_signed_documents_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_documents")),
    )
    with op.batch_alter_table("signed_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signed_documents_session_id"), ["session_id"], unique=True
        )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("document")
    with op.batch_alter_table("signed_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signed_documents_session_id"))
    op.drop_table("signed_documents")
