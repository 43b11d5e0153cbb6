"""The life of a soft-deletable resource, written once for credentials and webhook triggers.

create (idempotent by ``request_id``) → get / list → edit → delete (soft, restorable for the
retention window) → purge (the secret material destroyed, a tombstone kept). What differs per
kind — its names, its errors, how it is marked deleted and when it falls due — is a
:class:`ResourceKind`; everything else is :class:`Lifecycle` and :func:`purge_expired`.

Audit: ``<noun>.create``, ``<noun>.delete``, an edit's own action, and ``<noun>.purge`` (actor
``system``); an idempotent retry or a repeated delete records nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from servicekit.audit import AuditAction, AuditEvent, format_time
from servicekit.errors import RailguardError
from servicekit.pagination import fetch_page

from credentials_service.domain import SoftDeletable
from credentials_service.ports import CredentialsUnitOfWork, DuplicateRequest, ResourceRepository
from credentials_service.usecases.common import Actor, Deps

__all__ = ["Lifecycle", "LifecycleUseCases", "PurgeScan", "ResourceKind", "purge_expired"]

_audit = logging.getLogger("credentials_service.audit")


R = TypeVar("R", bound=SoftDeletable)
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class PurgeScan:
    """One pass of the purge job: what is due at ``now`` under ``retention``, a page at a time."""

    now: dt.datetime
    retention: dt.timedelta
    after: str = ""
    limit: int = 100


class ResourceKind(ABC, Generic[R]):
    """What one kind of resource adds to the shared lifecycle."""

    create_action: AuditAction
    delete_action: AuditAction
    purge_action: AuditAction
    """The audit actions the shared lifecycle records for this kind."""
    log_noun: str
    """The audit log lines' prefix: ``webhook_trigger`` → ``webhook_trigger.created``."""
    collection: str
    """The resource name's collection: ``workspaces/<ws>/<collection>/<id>``."""
    table: str
    """What the rewrap progress calls the stored rows."""
    listing: str
    """What a page token of the kind's listing is bound to, with the workspace and filter."""

    def name(self, item: R) -> str:
        return f"workspaces/{item.workspace_id}/{self.collection}/{item.id}"

    @abstractmethod
    def repository(self, uow: CredentialsUnitOfWork) -> ResourceRepository[R]: ...

    @abstractmethod
    def not_found(self) -> RailguardError:
        """A missing item, or another workspace's (the same answer)."""

    @abstractmethod
    def purged(self) -> RailguardError:
        """A tombstone, to a member of its workspace."""

    @abstractmethod
    def deleted(self) -> RailguardError:
        """An edit of a deleted item."""

    @abstractmethod
    def vanished(self, item: R | None) -> RailguardError:
        """An edit whose item disappeared or was deleted since the caller last read it."""

    @abstractmethod
    def mark_deleted(self, item: R, now: dt.datetime, purge_at: dt.datetime, by: str) -> None: ...

    @abstractmethod
    def log_fields(self, actor: Actor, item: R) -> dict[str, object]:
        """What the audit log line says about the item (never its secret)."""

    @abstractmethod
    async def purge_candidates(self, uow: CredentialsUnitOfWork, scan: PurgeScan) -> list[R]:
        """Items that may be due at ``scan.now``, in id order after ``scan.after``."""

    @abstractmethod
    def purge_due(self, item: R, scan: PurgeScan) -> bool:
        """The re-check, under lock, before an item is purged."""

    def purge_metadata(self, item: R) -> dict[str, str]:
        """What the purge event says about the item besides its delete time."""
        return {}


class Lifecycle(Generic[R]):
    """The workspace-scoped operations every kind shares; each asks the gate first."""

    def __init__(self, kind: ResourceKind[R], deps: Deps) -> None:
        self.kind, self._uow, self._clock = kind, deps.shared.uow, deps.shared.clock
        self._gate, self._audit = deps.gate, deps.audit
        self._retention = dt.timedelta(days=deps.retention_days)

    async def record(
        self,
        uow: CredentialsUnitOfWork,
        actor: Actor | str,
        item: R,
        action: str,
        metadata: Mapping[str, str] | None = None,
        *,
        client_ip: str | None = None,
    ) -> None:
        """Record ``action`` on ``item`` in ``uow``'s transaction (see ``AuditTrail.record``)."""
        await self._audit.record(
            uow,
            actor,
            item.workspace_id,
            action,
            self.kind.name(item),
            metadata,
            client_ip=client_ip,
        )

    async def existing(self, actor: Actor, request_id: str | None) -> R | None:
        """What an earlier create with this ``request_id`` by this user stored, if any."""
        if not request_id:
            return None
        async with self._uow() as uow:
            return await self.kind.repository(uow).by_request_id(
                actor.workspace_id, actor.user_id, request_id
            )

    async def add(
        self,
        actor: Actor,
        item: R,
        request_id: str | None,
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[R, bool]:
        """Store a new item and its ``create`` event; when a concurrent create with the same
        ``request_id`` won, return what it stored and False (nothing recorded)."""
        try:
            async with self._uow() as uow:
                await self.kind.repository(uow).add(item, request_id)
                await self.record(uow, actor, item, self.kind.create_action, metadata)
                await uow.commit()
        except DuplicateRequest:
            existing = await self.existing(actor, request_id)
            if existing is None:
                raise
            return existing, False
        self._audit.committed()
        _audit.info(f"{self.kind.log_noun}.created", extra=self.kind.log_fields(actor, item))
        return item, True

    async def get(self, actor: Actor, item_id: str) -> R:
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            item = await self.kind.repository(uow).get(actor.workspace_id, item_id)
        if item is None:
            raise self.kind.not_found()
        if item.purged:
            raise self.kind.purged()
        return item

    async def page(
        self, actor: Actor, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[R], str]:
        """One page in id order, live items only or with the deleted ones (never tombstones)."""

        async def read(after: str, limit: int) -> list[R]:
            async with self._uow() as uow:
                return await self.kind.repository(uow).page(
                    actor.workspace_id, after, limit, show_deleted=show_deleted
                )

        await self._gate.require_alive(actor.workspace_id)
        query = f"{self.kind.listing}:{actor.workspace_id}:{show_deleted}"
        return await fetch_page(page_size, page_token, query, read, lambda item: item.id)

    async def edit(
        self,
        actor: Actor,
        item_id: str,
        prepare: Callable[[R], Awaitable[P]],
        apply: Callable[[R, P], Mapping[str, str]],
        action: str,
    ) -> tuple[R, P]:
        """Change a live item: ``prepare`` runs on the current item outside any transaction
        (sealing a new value), ``apply`` changes the re-read item in the transaction and returns
        the event's metadata; the ``action`` event commits with the change. The changed item and
        what ``prepare`` made."""
        current = await self.get(actor, item_id)
        if current.deleted:
            raise self.kind.deleted()
        prepared = await prepare(current)
        async with self._uow() as uow:
            repo = self.kind.repository(uow)
            item = await repo.get(actor.workspace_id, item_id)
            if item is None or item.deleted:
                raise self.kind.vanished(item)
            metadata = apply(item, prepared)
            await repo.save(item)
            await self.record(uow, actor, item, action, metadata)
            await uow.commit()
        self._audit.committed()
        return item, prepared

    async def delete(self, actor: Actor, item_id: str) -> R:
        """Soft-delete; restorable until ``retention_days`` from now. Deleting twice is a no-op."""
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            repo = self.kind.repository(uow)
            item = await repo.get(actor.workspace_id, item_id)
            if item is None:
                raise self.kind.not_found()
            if item.purged:
                raise self.kind.purged()
            if item.deleted:
                return item
            now = self._clock.now()
            purge_at = now + self._retention
            self.kind.mark_deleted(item, now, purge_at, actor.user_id)
            await repo.save(item)
            purge_time = {"purge_time": format_time(purge_at)}
            await self.record(uow, actor, item, self.kind.delete_action, purge_time)
            await uow.commit()
        self._audit.committed()
        _audit.info(f"{self.kind.log_noun}.deleted", extra=self.kind.log_fields(actor, item))
        return item


class LifecycleUseCases(Generic[R]):
    """The use cases every kind offers just as the lifecycle has them — read one, list a page,
    delete — so that the RPC layer serves them once for every kind; a kind's use cases add the
    rest (create, its edits)."""

    def __init__(self, kind: ResourceKind[R], deps: Deps) -> None:
        self.lifecycle = Lifecycle(kind, deps)

    async def get(self, actor: Actor, item_id: str) -> R:
        return await self.lifecycle.get(actor, item_id)

    async def list(
        self, actor: Actor, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[R], str]:
        return await self.lifecycle.page(actor, page_size, page_token, show_deleted)

    async def delete(self, actor: Actor, item_id: str) -> R:
        return await self.lifecycle.delete(actor, item_id)


async def purge_expired(
    kind: ResourceKind[R], uow: Callable[[], CredentialsUnitOfWork], scan: PurgeScan
) -> list[str]:
    """Purge every item of ``kind`` due at ``scan.now``; the ids purged.

    Candidates are read ``scan.limit`` at a time; each is purged in its own transaction after a
    re-check under lock, so a concurrent restore either wins or is refused.
    """
    purged: list[str] = []
    while True:
        async with uow() as tx:
            due = await kind.purge_candidates(tx, scan)
        if not due:
            return purged
        scan = replace(scan, after=due[-1].id)
        for item in due:
            if await _purge_one(kind, uow, item.workspace_id, item.id, scan):
                purged.append(item.id)


async def _purge_one(
    kind: ResourceKind[R],
    uow: Callable[[], CredentialsUnitOfWork],
    workspace_id: str,
    item_id: str,
    scan: PurgeScan,
) -> bool:
    async with uow() as tx:
        repo = kind.repository(tx)
        item = await repo.get(workspace_id, item_id, lock=True)
        if item is None or not kind.purge_due(item, scan):
            return False
        assert item.deleted_at is not None
        metadata = {**kind.purge_metadata(item), "delete_time": format_time(item.deleted_at)}
        item.purge(scan.now)
        await repo.save(item)
        await tx.outbox.record(
            AuditEvent.new(
                workspace_id=workspace_id,
                actor="system",
                action=kind.purge_action,
                target=kind.name(item),
                time=scan.now,
                metadata=metadata,
            )
        )
        await tx.commit()
    return True
