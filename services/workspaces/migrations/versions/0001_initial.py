"""Workspaces and members."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import id_column, identifier, references, timestamp

revision = "ws_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        id_column(),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("plan", sa.Integer, nullable=False),
        sa.Column("mfa_required", sa.Boolean, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=False),
        identifier("created_by"),
        identifier("request_id", nullable=True),
        timestamp("created_at"),
        timestamp("updated_at"),
        timestamp("deleted_at", nullable=True),
        sa.UniqueConstraint("created_by", "request_id", name="uq_workspaces_request"),
    )
    op.create_table(
        "workspace_members",
        references("workspace_id", "workspaces.id", primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.Integer, nullable=False),
        timestamp("created_at"),
    )
    op.create_index("ix_workspace_members_user_id", "workspace_members", ["user_id"])
