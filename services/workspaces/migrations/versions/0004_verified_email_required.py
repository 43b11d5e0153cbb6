"""Workspaces may require members with a verified email address (next to mfa_required)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ws_0004"
down_revision = "ws_0003"


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column(
                "verified_email_required", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("verified_email_required")
