"""Users, sessions, refresh tokens and signing keys."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import id_column, identifier, references, timestamp

revision = "auth_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "users",
        id_column(),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        timestamp("created_at"),
        timestamp("updated_at"),
        timestamp("deleted_at", nullable=True),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "sessions",
        id_column(),
        references("user_id", "users.id"),
        timestamp("created_at"),
        timestamp("last_used_at"),
        timestamp("idle_expires_at"),
        timestamp("absolute_expires_at"),
        timestamp("auth_time"),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("aal", sa.String(8), nullable=False),
        sa.Column("amr", sa.String(64), nullable=False),
        timestamp("revoked_at", nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=False),
    )
    op.create_index("ix_sessions_user_created", "sessions", ["user_id", "created_at"])
    op.create_table(
        "refresh_tokens",
        id_column(),
        references("session_id", "sessions.id"),
        sa.Column("token_hash", sa.String(64), nullable=False),
        timestamp("created_at"),
        timestamp("rotated_at", nullable=True),
        identifier("child_id", nullable=True),
        sa.Column("sealed_child", sa.Text, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_hash"),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("sealed_private_key", sa.Text, nullable=False),
        timestamp("created_at"),
        timestamp("activated_at", nullable=True),
        timestamp("retired_at", nullable=True),
        timestamp("verify_until", nullable=True),
    )
