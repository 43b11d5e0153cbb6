"""What the auth service has heard of each workspace's life (deleted, restored, purged).

Revision ID: auth_0004
Revises: auth_0003
"""

from __future__ import annotations

from servicekit.migrations import create_lifecycle_table, drop_lifecycle_table

revision = "auth_0004"
down_revision = "auth_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_lifecycle_table()


def downgrade() -> None:
    drop_lifecycle_table()
