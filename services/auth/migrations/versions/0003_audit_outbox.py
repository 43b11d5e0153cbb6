"""The audit outbox: security events waiting to be relayed to the workspace audit log.

Revision ID: auth_0003
Revises: auth_0002
"""

from __future__ import annotations

from alembic import op
from servicekit.outbox import audit_outbox_columns

revision = "auth_0003"
down_revision = "auth_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("auth_audit_outbox", *audit_outbox_columns())
    op.create_index("ix_auth_audit_outbox_unsent", "auth_audit_outbox", ["sent_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_auth_audit_outbox_unsent", table_name="auth_audit_outbox")
    op.drop_table("auth_audit_outbox")
