"""The SQL implementations of the credentials service's ports: repositories, unit of work."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import asdict
from typing import Any, ClassVar, Generic, TypeVar

from servicekit.audit import AuditEvent
from servicekit.db import SqlUnitOfWork, page_after, page_before
from servicekit.outbox import OutboxRepository
from servicekit.rows import from_row, rowcount
from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from credentials_service.adapters.tables import (
    AUDIT_OUTBOX,
    CredentialRow,
    WebhookDeliveryRow,
    WebhookTriggerRow,
)
from credentials_service.domain import Credential, Delivery, WebhookTrigger
from credentials_service.ports import DuplicateRequest

__all__ = [
    "DuplicateRequest",
    "OutboxRepository",
    "SqlCredentialRepository",
    "SqlCredentialsUnitOfWork",
    "SqlDeliveryRepository",
    "SqlWebhookTriggerRepository",
]

R = TypeVar("R", Credential, WebhookTrigger)
_ResourceRow = CredentialRow | WebhookTriggerRow


class _SqlResourceRepository(Generic[R]):
    """The SQL side of ``ports.ResourceRepository``, for a table of soft-deletable records with
    one ciphertext column (``_sealed``), written once for credentials and webhook triggers."""

    _row: ClassVar[type[_ResourceRow]]
    _model: ClassVar[type[Any]]
    _sealed: ClassVar[str]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _domain(self, row: Any) -> R:
        domain: R = from_row(self._model, row)
        return domain

    def _ciphertext(self) -> InstrumentedAttribute[str | None]:
        column: InstrumentedAttribute[str | None] = getattr(self._row, self._sealed)
        return column

    async def _all(self, stmt: Select[Any]) -> builtins.list[R]:
        return [self._domain(r) for r in (await self.session.execute(stmt)).scalars()]

    async def _one(self, stmt: Select[Any]) -> R | None:
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return self._domain(row) if row else None

    async def get(self, workspace_id: str, item_id: str, *, lock: bool = False) -> R | None:
        t = self._row
        stmt = select(t).where(t.id == item_id, t.workspace_id == workspace_id)
        return await self._one(stmt.with_for_update() if lock else stmt)

    async def by_request_id(self, workspace_id: str, user_id: str, request_id: str) -> R | None:
        t = self._row
        return await self._one(
            select(t).where(
                t.workspace_id == workspace_id, t.created_by == user_id, t.request_id == request_id
            )
        )

    async def add(self, item: R, request_id: str | None) -> None:
        self.session.add(self._row(**asdict(item), request_id=request_id))
        try:
            await self.session.flush()
        except IntegrityError:
            raise DuplicateRequest from None

    async def save(self, item: R) -> None:
        values = asdict(item)
        row = await self.session.get(self._row, values["id"])
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        await self.session.flush()

    async def page(
        self, workspace_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> builtins.list[R]:
        t = self._row
        stmt = page_after(select(t).where(t.workspace_id == workspace_id), t.id, after, limit)
        if not show_deleted:
            stmt = stmt.where(t.deleted_at.is_(None))
        else:
            stmt = stmt.where(t.purged_at.is_(None))  # tombstones are never listed
        return await self._all(stmt)

    async def _deleted_unpurged(
        self, after: str, limit: int, *conditions: ColumnElement[bool]
    ) -> builtins.list[R]:
        """Deleted records still holding their secret that also meet ``conditions``, by id."""
        t = self._row
        return await self._all(
            page_after(
                select(t).where(t.deleted_at.is_not(None), t.purged_at.is_(None), *conditions),
                t.id,
                after,
                limit,
            )
        )

    async def stale(self, below_version: int, after: str, limit: int) -> builtins.list[R]:
        """Rows sealed under a version older than ``below_version``, in id order after a cursor."""
        t = self._row
        return await self._all(
            page_after(
                select(t).where(t.key_version < below_version, self._ciphertext().is_not(None)),
                t.id,
                after,
                limit,
            )
        )

    async def count_stale(self, below_version: int) -> int:
        stmt = select(func.count()).where(
            self._row.key_version < below_version, self._ciphertext().is_not(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def replace_ciphertext(self, item_id: str, old: str, new: str, version: int) -> bool:
        """Swap a rewrapped ciphertext in, unless the value changed meanwhile (optimistic)."""
        stmt = (
            update(self._row)
            .where(self._row.id == item_id, self._ciphertext() == old)
            .values({self._sealed: new, "key_version": version})
        )
        result = await self.session.execute(stmt)
        return bool(rowcount(result))


class SqlCredentialRepository(_SqlResourceRepository[Credential]):
    _row, _model, _sealed = CredentialRow, Credential, "ciphertext"

    async def purge_due(
        self, now: dt.datetime, after: str, limit: int
    ) -> builtins.list[Credential]:
        """Deleted credentials whose ``purge_at`` has passed and that still hold a secret."""
        t = CredentialRow
        return await self._deleted_unpurged(
            after, limit, t.purge_at.is_not(None), t.purge_at <= now
        )


class SqlWebhookTriggerRepository(_SqlResourceRepository[WebhookTrigger]):
    _row, _model, _sealed = WebhookTriggerRow, WebhookTrigger, "token_ciphertext"

    async def by_token_hash(self, digest: bytes) -> WebhookTrigger | None:
        return await self._one(
            select(WebhookTriggerRow).where(WebhookTriggerRow.token_hash == digest)
        )

    async def deleted_unpurged(
        self, deleted_before: dt.datetime, after: str, limit: int
    ) -> builtins.list[WebhookTrigger]:
        """Triggers deleted at or before ``deleted_before`` and not purged yet, in id order."""
        return await self._deleted_unpurged(
            after, limit, WebhookTriggerRow.deleted_at <= deleted_before
        )


class SqlDeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, delivery: Delivery) -> None:
        self.session.add(WebhookDeliveryRow(**asdict(delivery)))
        await self.session.flush()

    async def page(self, trigger_id: str, before: str, limit: int) -> list[Delivery]:
        """Newest first: delivery ids start with the receive time, so id order is time order."""
        t = WebhookDeliveryRow
        stmt = page_before(select(t).where(t.trigger_id == trigger_id), t.id, before, limit)
        return [from_row(Delivery, r) for r in (await self.session.execute(stmt)).scalars()]


class SqlCredentialsUnitOfWork(SqlUnitOfWork):
    """``ports.CredentialsUnitOfWork`` over one SQLAlchemy session."""

    credentials: SqlCredentialRepository
    triggers: SqlWebhookTriggerRepository
    deliveries: SqlDeliveryRepository
    outbox: OutboxRepository[AuditEvent]

    def _bind(self, session: AsyncSession) -> None:
        self.credentials = SqlCredentialRepository(session)
        self.triggers = SqlWebhookTriggerRepository(session)
        self.deliveries = SqlDeliveryRepository(session)
        self.outbox = OutboxRepository(session, AUDIT_OUTBOX)
