"""Workspace lifecycle events for the other services: a version per workspace, one outbox per
receiver (auth, keys, credentials), and a backfill so workspaces deleted or purged before this revision
reach them too.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from servicekit.lifecycle import LifecycleEvent, LifecycleState
from servicekit.migrations import create_outbox_table
from servicekit.outbox import audit_outbox_columns

revision = "ws_0003"
down_revision = "ws_0002"

RECEIVERS = ("auth", "keys", "credentials")


def upgrade() -> None:
    op.add_column(
        "workspaces",
        sa.Column("lifecycle_version", sa.BigInteger, nullable=False, server_default="0"),
    )
    for receiver in RECEIVERS:
        create_outbox_table(f"workspace_lifecycle_outbox_{receiver}")
    _backfill()


def _backfill() -> None:
    """Queue the current state of every deleted or purged workspace (a delete was version 1, a
    purge version 2); receivers apply it like any event, so a repeat changes nothing."""
    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    rows = bind.execute(
        sa.text(
            "SELECT id, purged_at FROM workspaces "
            "WHERE deleted_at IS NOT NULL OR purged_at IS NOT NULL ORDER BY id"
        )
    ).all()
    metadata = (
        sa.MetaData()
    )  # typed tables, so timestamps are bound as every other write binds them
    outboxes = [
        sa.Table(f"workspace_lifecycle_outbox_{r}", metadata, *audit_outbox_columns())
        for r in RECEIVERS
    ]
    for ws_id, purged_at in rows:
        state, version = (
            (LifecycleState.PURGED, 2) if purged_at is not None else (LifecycleState.DELETED, 1)
        )
        bind.execute(
            sa.text("UPDATE workspaces SET lifecycle_version = :v WHERE id = :id"),
            {"v": version, "id": ws_id},
        )
        for outbox in outboxes:
            event = LifecycleEvent.new(ws_id, state, version, now)
            bind.execute(
                outbox.insert().values(
                    event_id=event.id, payload=event.envelope().to_json(), created_at=now
                )
            )


def downgrade() -> None:
    for receiver in RECEIVERS:
        op.drop_table(f"workspace_lifecycle_outbox_{receiver}")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("lifecycle_version")
