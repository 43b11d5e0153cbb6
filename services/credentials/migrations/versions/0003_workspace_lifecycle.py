"""What the credentials service has heard of each workspace's life (deleted, restored, purged).

Revision ID: credentials_0003
Revises: credentials_0002
"""

from __future__ import annotations

from servicekit.migrations import create_lifecycle_table, drop_lifecycle_table

revision = "credentials_0003"
down_revision = "credentials_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_lifecycle_table()


def downgrade() -> None:
    drop_lifecycle_table()
