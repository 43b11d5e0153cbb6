"""Erased accounts keep a tombstone row: users.purged_at."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.db import UtcDateTime

revision = "auth_0006"
down_revision = "auth_0005"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("purged_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("purged_at")
