"""The credentials service's tables (its database is its own; no other service reads it).

No column ever holds a plaintext value or token: ``ciphertext``/``token_ciphertext`` are
``vault:v<N>:`` ciphertexts bound to the row's context, ``token_hash`` is a keyed hash. The purge
job sets them (and ``masked_value``) to NULL/empty once the retention window has ended; the row
stays as a tombstone (``purged_at`` set). ``credentials_audit_outbox`` holds audit events written
in the same transaction as each change, until the relay has shipped them.
"""

from __future__ import annotations

import datetime as dt

from servicekit.db import UtcDateTime
from servicekit.lifecycle import LifecycleStore
from servicekit.outbox import AuditOutbox
from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The credentials service's own metadata."""


class _SecretHolder:
    """The columns every soft-deletable secret holder has: who owns it, the key version its one
    ciphertext is sealed under, the create's idempotency key, and the tombstone time."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    purged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CredentialRow(_SecretHolder, Base):
    __tablename__ = "credentials"

    provider: Mapped[str] = mapped_column(String(32))
    masked_value: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    purge_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)

    __table_args__ = (
        UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_credentials_request"),
    )


class WebhookTriggerRow(_SecretHolder, Base):
    __tablename__ = "webhook_triggers"

    token_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True, nullable=True)
    token_issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_delivery_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)

    __table_args__ = (
        UniqueConstraint("workspace_id", "created_by", "request_id", name="uq_webhook_request"),
    )


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    trigger_id: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(200))
    source_ip: Mapped[str] = mapped_column(String(64))


AUDIT_OUTBOX = AuditOutbox.define("credentials", Base.metadata)
# what this service has heard of each workspace's life (servicekit.lifecycle)
LIFECYCLE = LifecycleStore.define(Base.metadata)
