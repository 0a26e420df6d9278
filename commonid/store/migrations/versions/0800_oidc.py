"""The OpenID Provider's state: clients, authorization requests and codes, tokens, jtis.

Revision ID: 0800
Revises: 0700
Create Date: 2026-12-05 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0800"
down_revision = "0700"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_clients",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("auth_method", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("jwks_uri", sa.String(length=2000), nullable=True),
        sa.Column("require_par", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_oidc_clients_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oidc_clients")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_oidc_clients_provider_id")),
    )
    op.create_table(
        "oidc_authorizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=True),
        sa.Column("browser_hash", sa.String(length=64), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oidc_clients.client_id"],
            name=op.f("fk_oidc_authorizations_client_id_oidc_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_authorizations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oidc_authorizations_code_hash")),
    )
    op.create_index(
        op.f("ix_oidc_authorizations_session_id"),
        "oidc_authorizations",
        ["session_id"],
        unique=False,
    )
    op.create_table(
        "oidc_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("authorization_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=400), nullable=False),
        sa.Column("jkt", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["oidc_authorizations.id"],
            name=op.f("fk_oidc_tokens_authorization_id_oidc_authorizations"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_oidc_tokens")),
    )
    op.create_table(
        "oidc_assertion_jtis",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_oidc_assertion_jtis")),
    )


def downgrade() -> None:
    op.drop_table("oidc_assertion_jtis")
    op.drop_table("oidc_tokens")
    op.drop_index(op.f("ix_oidc_authorizations_session_id"), table_name="oidc_authorizations")
    op.drop_table("oidc_authorizations")
    op.drop_table("oidc_clients")
