"""Users, sessions, refresh tokens and signing keys."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("deleted_at", ts, nullable=True),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("last_used_at", ts, nullable=False),
        sa.Column("idle_expires_at", ts, nullable=False),
        sa.Column("absolute_expires_at", ts, nullable=False),
        sa.Column("auth_time", ts, nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("aal", sa.String(8), nullable=False),
        sa.Column("amr", sa.String(64), nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=False),
    )
    op.create_index("ix_sessions_user_created", "sessions", ["user_id", "created_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "session_id",
            sa.String(64),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("rotated_at", ts, nullable=True),
        sa.Column("child_id", sa.String(64), nullable=True),
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
        sa.Column("created_at", ts, nullable=False),
        sa.Column("activated_at", ts, nullable=True),
        sa.Column("retired_at", ts, nullable=True),
        sa.Column("verify_until", ts, nullable=True),
    )
