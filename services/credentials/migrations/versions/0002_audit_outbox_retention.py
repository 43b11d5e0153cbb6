"""The audit outbox, and purge tombstones (``purged_at``; the token hash becomes nullable)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import create_outbox_table, make_purgeable

revision = "credentials_0002"
down_revision = "credentials_0001"


def upgrade() -> None:
    op.add_column("credentials", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_credentials_purge_at", "credentials", ["purge_at"])
    make_purgeable("webhook_triggers", "token_hash")
    create_outbox_table("credentials_audit_outbox")


def downgrade() -> None:
    raise NotImplementedError("purged secrets cannot come back")
