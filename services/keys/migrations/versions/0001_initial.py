"""API keys."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import id_column, identifier, timestamp

revision = "keys_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        id_column(),
        identifier("workspace_id"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("display_prefix", sa.String(32), nullable=False),
        sa.Column("secret_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("secret_pepper_version", sa.Integer, nullable=False),
        sa.Column("previous_digest", sa.LargeBinary(32), nullable=True),
        sa.Column("previous_pepper_version", sa.Integer, nullable=True),
        timestamp("previous_expires_at", nullable=True),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("allowed_cidrs", sa.JSON, nullable=False),
        sa.Column("allowed_origins", sa.JSON, nullable=False),
        identifier("created_by"),
        identifier("request_id", nullable=True),
        timestamp("created_at"),
        timestamp("updated_at"),
        timestamp("expires_at", nullable=True),
        timestamp("revoked_at", nullable=True),
        timestamp("deleted_at", nullable=True),
        timestamp("rotated_at", nullable=True),
        timestamp("last_used_at", nullable=True),
        sa.UniqueConstraint("secret_digest", name="uq_api_keys_secret_digest"),
        sa.UniqueConstraint("previous_digest", name="uq_api_keys_previous_digest"),
        sa.UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_api_keys_request"),
    )
    op.create_index(
        "ix_api_keys_workspace_creator", "api_keys", ["workspace_id", "created_by", "id"]
    )
