"""An index for a user's security log: account-level entries by target."""

from __future__ import annotations

from alembic import op

revision = "ws_0006"
down_revision = "ws_0005"


def upgrade() -> None:
    op.create_index(
        "ix_audit_events_ws_target_seq", "audit_events", ["workspace_id", "target", "sequence"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_ws_target_seq", table_name="audit_events")
