"""The workspaces service's tables (its database is its own; no other service reads it)."""

from __future__ import annotations

import datetime as dt

from servicekit.changefeed import ChangeLog
from servicekit.db import UtcDateTime
from servicekit.lifecycle import lifecycle_outbox
from servicekit.outbox import AuditOutbox
from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class WorkspaceRow(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[int] = mapped_column(Integer)
    mfa_required: Mapped[bool] = mapped_column(Boolean)
    verified_email_required: Mapped[bool] = mapped_column(Boolean, default=False)
    retention_days: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # set by the purge job: the row stays as a tombstone (name, ids, delete and purge times)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # bumped by delete, restore and purge; carried by the lifecycle events other services apply
    lifecycle_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    __table_args__ = (UniqueConstraint("created_by", "request_id", name="uq_workspaces_request"),)


class MemberRow(Base):
    __tablename__ = "workspace_members"

    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class AuditChainHeadRow(Base):
    """The last entry of a workspace's chain; its row lock serialises appends to that chain."""

    __tablename__ = "audit_chain_heads"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEventRow(Base):
    """One audit log entry. Append-only: no code path updates or deletes these rows, and they
    outlive their workspace (no foreign key, not touched by the purge job)."""

    __tablename__ = "audit_events"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(64))
    metadata_json: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    # a user's security log reads the account-level chain by target (migration ws_0006)
    __table_args__ = (Index("ix_audit_events_ws_target_seq", "workspace_id", "target", "sequence"),)


AUDIT_OUTBOX = AuditOutbox.define("workspaces", Base.metadata)
# the services that hold workspace data and must hear of its life: one outbox each, so one that
# is down holds back only its own events (see servicekit.lifecycle)
LIFECYCLE_RECEIVERS = ("auth", "keys", "credentials")
LIFECYCLE_OUTBOXES = {r: lifecycle_outbox(r, Base.metadata) for r in LIFECYCLE_RECEIVERS}
# what changed, for the edge's Watch (servicekit.changefeed), written in each change's transaction
CHANGE_LOG = ChangeLog.define("workspaces", Base.metadata)
