"""The change log the edge watches (servicekit.changefeed): a row per change, in its transaction.

Revision ID: keys_0005
Revises: keys_0004
"""

from __future__ import annotations

from alembic import op
from servicekit.changefeed import change_log_columns, change_log_name

revision = "keys_0005"
down_revision = "keys_0004"
branch_labels = None
depends_on = None
TABLE = change_log_name("keys")


def upgrade() -> None:
    op.create_table(TABLE, *change_log_columns(), sqlite_autoincrement=True)
    op.create_index(f"ix_{TABLE}_created_at", TABLE, ["created_at"])


def downgrade() -> None:
    op.drop_index(f"ix_{TABLE}_created_at", table_name=TABLE)
    op.drop_table(TABLE)
