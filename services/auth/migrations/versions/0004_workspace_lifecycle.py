"""What the auth service has heard of each workspace's life (deleted, restored, purged).

Revision ID: auth_0004
Revises: auth_0003
"""

from __future__ import annotations

from alembic import op
from servicekit.lifecycle import lifecycle_table_columns

revision = "auth_0004"
down_revision = "auth_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("workspace_lifecycle", *lifecycle_table_columns())


def downgrade() -> None:
    op.drop_table("workspace_lifecycle")
