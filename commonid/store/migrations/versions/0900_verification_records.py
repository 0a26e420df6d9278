"""Verification records (確認記録) kept for providers under the AML Act, the
provider's own reference on a session, why a person must verify again, and the
service's statement linking a renewed card's DID to the earlier ones.

Revision ID: 0900
Revises: 0800
Create Date: 2026-12-05 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0900"
down_revision = "0800"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("provider_reference", sa.String(length=100), nullable=True))
    op.add_column(
        "persons", sa.Column("reverification_reason", sa.String(length=60), nullable=True)
    )
    op.add_column("dids", sa.Column("link_statement", sa.Text(), nullable=True))
    op.add_column(
        "issued_credentials",
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "verification_records",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=True),
        sa.Column("subject_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("content_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("relationship_ended_on", sa.Date(), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_verification_records_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_records")),
        sa.UniqueConstraint("session_id", name=op.f("uq_verification_records_session_id")),
    )
    op.create_index(
        op.f("ix_verification_records_provider_id_verified_at"),
        "verification_records",
        ["provider_id", "verified_at"],
    )
    op.create_index(
        op.f("ix_verification_records_provider_id_subject_id"),
        "verification_records",
        ["provider_id", "subject_id"],
    )
    op.create_index(
        op.f("ix_verification_records_retain_until"), "verification_records", ["retain_until"]
    )


def downgrade() -> None:
    op.drop_table("verification_records")
    op.drop_column("sessions", "provider_reference")
    op.drop_column("persons", "reverification_reason")
    op.drop_column("dids", "link_statement")
    op.drop_column("issued_credentials", "superseded_at")
