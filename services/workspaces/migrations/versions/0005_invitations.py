"""Invitations of email addresses into workspaces, and the mail outbox that carries them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import (
    create_outbox_table,
    drop_outbox_table,
    id_column,
    identifier,
    references,
    timestamp,
)

revision = "ws_0005"
down_revision = "ws_0004"


def upgrade() -> None:
    op.create_table(
        "workspace_invitations",
        id_column(),
        references("workspace_id", "workspaces.id"),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        identifier("invited_by"),
        timestamp("created_at"),
        timestamp("expires_at"),
        timestamp("accepted_at", nullable=True),
        sa.Column("accepted_by", sa.String(64), nullable=False, server_default=""),
        timestamp("revoked_at", nullable=True),
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
