"""The audit outbox: security events waiting to be relayed to the workspace audit log."""

from __future__ import annotations

from servicekit.migrations import create_outbox_table, drop_outbox_table

revision = "auth_0003"
down_revision = "auth_0002"


def upgrade() -> None:
    create_outbox_table("auth_audit_outbox")


def downgrade() -> None:
    drop_outbox_table("auth_audit_outbox")
