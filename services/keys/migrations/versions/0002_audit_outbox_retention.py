"""The audit outbox, and purge tombstones (digests become nullable, ``purged_at``)."""

from __future__ import annotations

from servicekit.migrations import create_outbox_table, make_purgeable

revision = "keys_0002"
down_revision = "keys_0001"


def upgrade() -> None:
    make_purgeable("api_keys", "secret_digest")
    create_outbox_table("keys_audit_outbox")


def downgrade() -> None:
    raise NotImplementedError("purged keys cannot get their digests back")
