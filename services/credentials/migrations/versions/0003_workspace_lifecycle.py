"""What the credentials service has heard of each workspace's life (deleted, restored, purged).

Revision ID: credentials_0003
Revises: credentials_0002
"""

from __future__ import annotations

from alembic import op
from servicekit.lifecycle import lifecycle_table_columns

revision = "credentials_0003"
down_revision = "credentials_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("workspace_lifecycle", *lifecycle_table_columns())


def downgrade() -> None:
    op.drop_table("workspace_lifecycle")
