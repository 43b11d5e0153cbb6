"""The audit log (hash chain per workspace), the audit outbox, and purge tombstones."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import create_outbox_table, identifier, timestamp

revision = "ws_0002"
down_revision = "ws_0001"


def upgrade() -> None:
    op.add_column("workspaces", timestamp("purged_at", nullable=True))
    op.create_table(
        "audit_chain_heads",
        sa.Column("workspace_id", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("workspace_id", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        timestamp("event_time"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        identifier("request_id"),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        timestamp("received_at"),
    )
    create_outbox_table("workspaces_audit_outbox")
    if op.get_bind().dialect.name == "postgresql":
        # append-only in the database too: an UPDATE or DELETE needs a superuser to drop this first
        op.execute(
            """
            CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'audit_events is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )


def downgrade() -> None:
    raise NotImplementedError("the audit log is never dropped by a migration")
