"""Repositories and the unit of work of the credentials service."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import asdict

from servicekit.audit import AuditEvent
from servicekit.db import SqlUnitOfWork
from servicekit.outbox import OutboxRepository
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from credentials_service.adapters.tables import (
    AUDIT_OUTBOX,
    CredentialRow,
    WebhookDeliveryRow,
    WebhookTriggerRow,
)
from credentials_service.domain import Credential, Delivery, WebhookTrigger

__all__ = [
    "CredentialRepository",
    "CredentialsUnitOfWork",
    "DeliveryRepository",
    "DuplicateRequest",
    "OutboxRepository",
    "WebhookTriggerRepository",
]


class DuplicateRequest(Exception):
    """Another transaction stored the same (workspace, creator, request_id) first."""


def _credential(row: CredentialRow) -> Credential:
    return Credential(
        id=row.id,
        workspace_id=row.workspace_id,
        display_name=row.display_name,
        provider=row.provider,
        masked_value=row.masked_value,
        ciphertext=row.ciphertext,
        key_version=row.key_version,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        last_used_at=row.last_used_at,
        deleted_at=row.deleted_at,
        purge_at=row.purge_at,
        purged_at=row.purged_at,
    )


def _trigger(row: WebhookTriggerRow) -> WebhookTrigger:
    return WebhookTrigger(
        id=row.id,
        workspace_id=row.workspace_id,
        display_name=row.display_name,
        token_ciphertext=row.token_ciphertext,
        key_version=row.key_version,
        token_hash=row.token_hash,
        created_at=row.created_at,
        created_by=row.created_by,
        token_issued_at=row.token_issued_at,
        last_delivery_at=row.last_delivery_at,
        deleted_at=row.deleted_at,
        purged_at=row.purged_at,
    )


class CredentialRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: str, credential_id: str, *, lock: bool = False
    ) -> Credential | None:
        stmt = select(CredentialRow).where(
            CredentialRow.id == credential_id, CredentialRow.workspace_id == workspace_id
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _credential(row) if row else None

    async def by_request_id(
        self, workspace_id: str, user_id: str, request_id: str
    ) -> Credential | None:
        stmt = select(CredentialRow).where(
            CredentialRow.workspace_id == workspace_id,
            CredentialRow.created_by == user_id,
            CredentialRow.request_id == request_id,
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _credential(row) if row else None

    async def add(self, credential: Credential, request_id: str | None) -> None:
        self.session.add(CredentialRow(**asdict(credential), request_id=request_id))
        try:
            await self.session.flush()
        except IntegrityError:
            raise DuplicateRequest from None

    async def save(self, credential: Credential) -> None:
        row = await self.session.get(CredentialRow, credential.id)
        assert row is not None
        for name, value in asdict(credential).items():
            setattr(row, name, value)
        await self.session.flush()

    async def page(
        self, workspace_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[Credential]:
        stmt = (
            select(CredentialRow)
            .where(CredentialRow.workspace_id == workspace_id, CredentialRow.id > after)
            .order_by(CredentialRow.id)
            .limit(limit)
        )
        if not show_deleted:
            stmt = stmt.where(CredentialRow.deleted_at.is_(None))
        else:
            stmt = stmt.where(CredentialRow.purged_at.is_(None))  # tombstones are never listed
        return [_credential(r) for r in (await self.session.execute(stmt)).scalars()]

    async def purge_due(
        self, now: dt.datetime, after: str, limit: int
    ) -> builtins.list[Credential]:
        """Deleted credentials whose ``purge_at`` has passed and that still hold a secret."""
        stmt = (
            select(CredentialRow)
            .where(
                CredentialRow.purge_at.is_not(None),
                CredentialRow.purge_at <= now,
                CredentialRow.deleted_at.is_not(None),
                CredentialRow.purged_at.is_(None),
                CredentialRow.id > after,
            )
            .order_by(CredentialRow.id)
            .limit(limit)
        )
        return [_credential(r) for r in (await self.session.execute(stmt)).scalars()]

    async def stale(self, below_version: int, after: str, limit: int) -> list[Credential]:
        """Rows sealed under a version older than ``below_version``, in id order after a cursor."""
        stmt = (
            select(CredentialRow)
            .where(
                CredentialRow.key_version < below_version,
                CredentialRow.ciphertext.is_not(None),
                CredentialRow.id > after,
            )
            .order_by(CredentialRow.id)
            .limit(limit)
        )
        return [_credential(r) for r in (await self.session.execute(stmt)).scalars()]

    async def count_stale(self, below_version: int) -> int:
        stmt = select(func.count()).where(
            CredentialRow.key_version < below_version, CredentialRow.ciphertext.is_not(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def replace_ciphertext(
        self, credential_id: str, old: str, new: str, version: int
    ) -> bool:
        """Swap a rewrapped ciphertext in, unless the value changed meanwhile (optimistic)."""
        stmt = (
            update(CredentialRow)
            .where(CredentialRow.id == credential_id, CredentialRow.ciphertext == old)
            .values(ciphertext=new, key_version=version)
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))


class WebhookTriggerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, workspace_id: str, trigger_id: str, *, lock: bool = False
    ) -> WebhookTrigger | None:
        stmt = select(WebhookTriggerRow).where(
            WebhookTriggerRow.id == trigger_id, WebhookTriggerRow.workspace_id == workspace_id
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _trigger(row) if row else None

    async def by_token_hash(self, digest: bytes) -> WebhookTrigger | None:
        stmt = select(WebhookTriggerRow).where(WebhookTriggerRow.token_hash == digest)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _trigger(row) if row else None

    async def by_request_id(
        self, workspace_id: str, user_id: str, request_id: str
    ) -> WebhookTrigger | None:
        stmt = select(WebhookTriggerRow).where(
            WebhookTriggerRow.workspace_id == workspace_id,
            WebhookTriggerRow.created_by == user_id,
            WebhookTriggerRow.request_id == request_id,
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _trigger(row) if row else None

    async def add(self, trigger: WebhookTrigger, request_id: str | None) -> None:
        self.session.add(WebhookTriggerRow(**asdict(trigger), request_id=request_id))
        try:
            await self.session.flush()
        except IntegrityError:
            raise DuplicateRequest from None

    async def save(self, trigger: WebhookTrigger) -> None:
        row = await self.session.get(WebhookTriggerRow, trigger.id)
        assert row is not None
        for name, value in asdict(trigger).items():
            setattr(row, name, value)
        await self.session.flush()

    async def page(
        self, workspace_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[WebhookTrigger]:
        stmt = (
            select(WebhookTriggerRow)
            .where(WebhookTriggerRow.workspace_id == workspace_id, WebhookTriggerRow.id > after)
            .order_by(WebhookTriggerRow.id)
            .limit(limit)
        )
        if not show_deleted:
            stmt = stmt.where(WebhookTriggerRow.deleted_at.is_(None))
        else:
            stmt = stmt.where(WebhookTriggerRow.purged_at.is_(None))  # tombstones are never listed
        return [_trigger(r) for r in (await self.session.execute(stmt)).scalars()]

    async def deleted_unpurged(
        self, deleted_before: dt.datetime, after: str, limit: int
    ) -> builtins.list[WebhookTrigger]:
        """Triggers deleted at or before ``deleted_before`` and not purged yet, in id order."""
        stmt = (
            select(WebhookTriggerRow)
            .where(
                WebhookTriggerRow.deleted_at.is_not(None),
                WebhookTriggerRow.deleted_at <= deleted_before,
                WebhookTriggerRow.purged_at.is_(None),
                WebhookTriggerRow.id > after,
            )
            .order_by(WebhookTriggerRow.id)
            .limit(limit)
        )
        return [_trigger(r) for r in (await self.session.execute(stmt)).scalars()]

    async def stale(self, below_version: int, after: str, limit: int) -> list[WebhookTrigger]:
        stmt = (
            select(WebhookTriggerRow)
            .where(
                WebhookTriggerRow.key_version < below_version,
                WebhookTriggerRow.token_ciphertext.is_not(None),
                WebhookTriggerRow.id > after,
            )
            .order_by(WebhookTriggerRow.id)
            .limit(limit)
        )
        return [_trigger(r) for r in (await self.session.execute(stmt)).scalars()]

    async def count_stale(self, below_version: int) -> int:
        stmt = select(func.count()).where(
            WebhookTriggerRow.key_version < below_version,
            WebhookTriggerRow.token_ciphertext.is_not(None),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def replace_ciphertext(self, trigger_id: str, old: str, new: str, version: int) -> bool:
        stmt = (
            update(WebhookTriggerRow)
            .where(WebhookTriggerRow.id == trigger_id, WebhookTriggerRow.token_ciphertext == old)
            .values(token_ciphertext=new, key_version=version)
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, delivery: Delivery) -> None:
        self.session.add(WebhookDeliveryRow(**asdict(delivery)))
        await self.session.flush()

    async def page(self, trigger_id: str, before: str, limit: int) -> list[Delivery]:
        """Newest first: delivery ids start with the receive time, so id order is time order."""
        stmt = select(WebhookDeliveryRow).where(WebhookDeliveryRow.trigger_id == trigger_id)
        if before:
            stmt = stmt.where(WebhookDeliveryRow.id < before)
        stmt = stmt.order_by(WebhookDeliveryRow.id.desc()).limit(limit)
        return [
            Delivery(
                id=r.id,
                workspace_id=r.workspace_id,
                trigger_id=r.trigger_id,
                received_at=r.received_at,
                size_bytes=r.size_bytes,
                content_type=r.content_type,
                source_ip=r.source_ip,
            )
            for r in (await self.session.execute(stmt)).scalars()
        ]


class CredentialsUnitOfWork(SqlUnitOfWork):
    credentials: CredentialRepository
    triggers: WebhookTriggerRepository
    deliveries: DeliveryRepository
    outbox: OutboxRepository[AuditEvent]

    def _bind(self, session: AsyncSession) -> None:
        self.credentials = CredentialRepository(session)
        self.triggers = WebhookTriggerRepository(session)
        self.deliveries = DeliveryRepository(session)
        self.outbox = OutboxRepository(session, AUDIT_OUTBOX)
