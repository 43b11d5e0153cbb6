"""Credentials, webhook triggers and their deliveries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import id_column, identifier, timestamp

revision = "credentials_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        id_column(),
        identifier("workspace_id"),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("masked_value", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=True),
        sa.Column("key_version", sa.Integer, nullable=False),
        identifier("request_id", nullable=True),
        timestamp("created_at"),
        identifier("created_by"),
        timestamp("updated_at"),
        identifier("updated_by"),
        timestamp("last_used_at", nullable=True),
        timestamp("deleted_at", nullable=True),
        timestamp("purge_at", nullable=True),
        sa.UniqueConstraint(
            "workspace_id", "created_by", "request_id", name="uq_credentials_request"
        ),
    )
    op.create_index("ix_credentials_workspace_id", "credentials", ["workspace_id"])
    op.create_index("ix_credentials_key_version", "credentials", ["key_version"])
    op.create_table(
        "webhook_triggers",
        id_column(),
        identifier("workspace_id"),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("token_ciphertext", sa.Text, nullable=True),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        identifier("request_id", nullable=True),
        timestamp("created_at"),
        identifier("created_by"),
        timestamp("token_issued_at"),
        timestamp("last_delivery_at", nullable=True),
        timestamp("deleted_at", nullable=True),
        sa.UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_webhook_request"),
    )
    op.create_index("ix_webhook_triggers_workspace_id", "webhook_triggers", ["workspace_id"])
    op.create_index("ix_webhook_triggers_key_version", "webhook_triggers", ["key_version"])
    op.create_table(
        "webhook_deliveries",
        id_column(),
        identifier("workspace_id"),
        identifier("trigger_id"),
        timestamp("received_at"),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_trigger_id", "webhook_deliveries", ["trigger_id"])
