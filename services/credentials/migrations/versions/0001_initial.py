"""Credentials, webhook triggers and their deliveries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "credentials_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("masked_value", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=True),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "workspace_id", "created_by", "request_id", name="uq_credentials_request"
        ),
    )
    op.create_index("ix_credentials_workspace_id", "credentials", ["workspace_id"])
    op.create_index("ix_credentials_key_version", "credentials", ["key_version"])
    op.create_table(
        "webhook_triggers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("token_ciphertext", sa.Text, nullable=True),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("token_issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_delivery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_webhook_request"),
    )
    op.create_index("ix_webhook_triggers_workspace_id", "webhook_triggers", ["workspace_id"])
    op.create_index("ix_webhook_triggers_key_version", "webhook_triggers", ["key_version"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_trigger_id", "webhook_deliveries", ["trigger_id"])
