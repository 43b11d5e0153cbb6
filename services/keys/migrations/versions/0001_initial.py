"""API keys."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "keys_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("display_prefix", sa.String(32), nullable=False),
        sa.Column("secret_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("secret_pepper_version", sa.Integer, nullable=False),
        sa.Column("previous_digest", sa.LargeBinary(32), nullable=True),
        sa.Column("previous_pepper_version", sa.Integer, nullable=True),
        sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("allowed_cidrs", sa.JSON, nullable=False),
        sa.Column("allowed_origins", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("secret_digest", name="uq_api_keys_secret_digest"),
        sa.UniqueConstraint("previous_digest", name="uq_api_keys_previous_digest"),
        sa.UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_api_keys_request"),
    )
    op.create_index(
        "ix_api_keys_workspace_creator", "api_keys", ["workspace_id", "created_by", "id"]
    )
