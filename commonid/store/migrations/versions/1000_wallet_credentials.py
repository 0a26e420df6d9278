"""Wallet credentials: SD-JWT VCs issued over OpenID4VCI with their IETF Token
Status Lists, credential offers and proof nonces, and OpenID4VP presentation
requests made by providers.

Revision ID: 1000
Revises: 0900
Create Date: 2026-12-05 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1000"
down_revision = "0900"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "token_status_lists",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("uri", sa.String(length=300), nullable=False),
        sa.Column("serialized", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_status_lists")),
    )
    op.create_table(
        "wallet_credentials",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("offer_id", sa.String(length=40), nullable=False),
        sa.Column("status_list_id", sa.String(length=40), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("certificate_serial_hash", sa.String(length=64), nullable=False),
        sa.Column("holder_binding", sa.String(length=10), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("superseded_at", _TS, nullable=True),
        sa.Column("suspended_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_wallet_credentials_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["status_list_id"],
            ["token_status_lists.id"],
            name=op.f("fk_wallet_credentials_status_list_id_token_status_lists"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_credentials")),
    )
    for column in ("person_id", "offer_id", "certificate_serial_hash"):
        op.create_index(op.f(f"ix_wallet_credentials_{column}"), "wallet_credentials", [column])
    op.create_index(
        op.f("ix_wallet_credentials_status_list_id_status_index"),
        "wallet_credentials",
        ["status_list_id", "status_index"],
        unique=True,
    )
    op.create_table(
        "credential_offers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tx_code_hash", sa.String(length=64), nullable=False),
        sa.Column("tx_code_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", _TS, nullable=True),
        sa.Column("credentials_issued", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_credential_offers_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_offers")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_credential_offers_code_hash")),
        sa.UniqueConstraint(
            "access_token_hash", name=op.f("uq_credential_offers_access_token_hash")
        ),
    )
    op.create_index(op.f("ix_credential_offers_person_id"), "credential_offers", ["person_id"])
    op.create_index(op.f("ix_credential_offers_session_id"), "credential_offers", ["session_id"])
    op.create_table(
        "wallet_nonces",
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("nonce_hash", name=op.f("pk_wallet_nonces")),
    )
    op.create_index(op.f("ix_wallet_nonces_expires_at"), "wallet_nonces", ["expires_at"])
    op.create_table(
        "presentation_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("dcql_query", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason_code", sa.String(length=60), nullable=True),
        sa.Column("answered_at", _TS, nullable=True),
        sa.Column("result_key_id", sa.String(length=40), nullable=True),
        sa.Column("result_encrypted", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_presentation_requests_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presentation_requests")),
        sa.UniqueConstraint("state", name=op.f("uq_presentation_requests_state")),
    )
    op.create_index(
        op.f("ix_presentation_requests_provider_id"), "presentation_requests", ["provider_id"]
    )


def downgrade() -> None:
    op.drop_table("presentation_requests")
    op.drop_table("wallet_nonces")
    op.drop_table("credential_offers")
    op.drop_table("wallet_credentials")
    op.drop_table("token_status_lists")
