"""Invitations of email addresses into workspaces, and the mail outbox that carries them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.db import UtcDateTime
from servicekit.migrations import create_outbox_table, drop_outbox_table

revision = "ws_0005"
down_revision = "ws_0004"


def upgrade() -> None:
    op.create_table(
        "workspace_invitations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(64),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("invited_by", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("accepted_at", UtcDateTime(), nullable=True),
        sa.Column("accepted_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index(
        "ix_workspace_invitations_ws_created",
        "workspace_invitations",
        ["workspace_id", "created_at", "id"],
    )
    create_outbox_table("workspaces_mail_outbox")


def downgrade() -> None:
    drop_outbox_table("workspaces_mail_outbox")
    op.drop_index("ix_workspace_invitations_ws_created", table_name="workspace_invitations")
    op.drop_table("workspace_invitations")
