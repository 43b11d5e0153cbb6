"""The audit outbox, and purge tombstones (digests become nullable, ``purged_at``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import create_outbox_table

revision = "keys_0002"
down_revision = "keys_0001"


def upgrade() -> None:
    # batch: SQLite cannot relax NOT NULL in place (the table is copied); PostgreSQL alters it
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("secret_digest", existing_type=sa.LargeBinary(32), nullable=True)
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_api_keys_deleted_at", ["deleted_at"])
    create_outbox_table("keys_audit_outbox")


def downgrade() -> None:
    raise NotImplementedError("purged keys cannot get their digests back")
