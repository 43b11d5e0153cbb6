"""The audit outbox, and purge tombstones (``purged_at``; the token hash becomes nullable)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import create_outbox_table

revision = "credentials_0002"
down_revision = "credentials_0001"


def upgrade() -> None:
    op.add_column("credentials", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_credentials_purge_at", "credentials", ["purge_at"])
    # batch: SQLite cannot relax NOT NULL in place (the table is copied); PostgreSQL alters it
    with op.batch_alter_table("webhook_triggers") as batch:
        batch.alter_column("token_hash", existing_type=sa.LargeBinary(32), nullable=True)
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_webhook_triggers_deleted_at", ["deleted_at"])
    create_outbox_table("credentials_audit_outbox")


def downgrade() -> None:
    raise NotImplementedError("purged secrets cannot come back")
