"""The keys service's tables (its database is its own; no other service reads it).

No column holds a key or anything reversible to one: ``secret_digest`` is HMAC-SHA256 under a
server-side pepper (the lookup column, unique); ``display_prefix`` is 4 of the 43 body characters.
The purge job sets both digests to NULL once a deleted key's retention window has ended; the row
stays as a tombstone (``purged_at`` set). ``keys_audit_outbox`` holds audit events written in the
same transaction as each change, until the relay has shipped them.
"""

from __future__ import annotations

import datetime as dt

from servicekit.changefeed import ChangeLog
from servicekit.db import UtcDateTime
from servicekit.lifecycle import LifecycleStore
from servicekit.outbox import AuditOutbox
from sqlalchemy import JSON, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(8))
    display_prefix: Mapped[str] = mapped_column(String(32))
    secret_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    secret_pepper_version: Mapped[int] = mapped_column(Integer)
    previous_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    previous_pepper_version: Mapped[int | None] = mapped_column(Integer)
    previous_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    scopes: Mapped[list[str]] = mapped_column(JSON)
    allowed_cidrs: Mapped[list[str]] = mapped_column(JSON)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    purged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    creator_aal: Mapped[str] = mapped_column(String(8), server_default="aal1")

    __table_args__ = (
        UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_api_keys_request"),
        Index("ix_api_keys_workspace_creator", "workspace_id", "created_by", "id"),
        Index("ix_api_keys_deleted_at", "deleted_at"),
    )


AUDIT_OUTBOX = AuditOutbox.define("keys", Base.metadata)
# what this service has heard of each workspace's life (servicekit.lifecycle)
LIFECYCLE = LifecycleStore.define(Base.metadata)
# what changed, for the edge's Watch (servicekit.changefeed), written in each change's transaction
CHANGE_LOG = ChangeLog.define("keys", Base.metadata)
