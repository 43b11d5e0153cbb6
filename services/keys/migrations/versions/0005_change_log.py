"""The change log the edge watches (servicekit.changefeed): a row per change, in its transaction.

Revision ID: keys_0005
Revises: keys_0004
"""

from __future__ import annotations

from servicekit.migrations import create_change_log_table, drop_change_log_table

revision = "keys_0005"
down_revision = "keys_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_change_log_table("keys")


def downgrade() -> None:
    drop_change_log_table("keys")
