"""The change log the edge watches (servicekit.changefeed): a row per change, in its transaction.

Revision ID: ws_0007
Revises: ws_0006
"""

from __future__ import annotations

from servicekit.migrations import create_change_log_table, drop_change_log_table

revision = "ws_0007"
down_revision = "ws_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_change_log_table("workspaces")


def downgrade() -> None:
    drop_change_log_table("workspaces")
