"""The ports of the keys use cases: Protocol classes the adapters implement.

Nothing here imports an adapter; ``__main__`` hands the concretes in
(``adapters.repository.SqlKeysUnitOfWork``, ``adapters.directory``, ``adapters.invalidation``,
``adapters.usage``).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from servicekit.ports import AuditedUnitOfWork, AuditOutboxPort, ReadOnlyUnitOfWork

from keys_service.domain import ApiKey, KeyHash, Role

__all__ = [
    "AuditOutboxPort",
    "Digests",
    "InvalidationPublisher",
    "KeyEvent",
    "KeyListing",
    "KeyRepository",
    "KeysUnitOfWork",
    "OriginLists",
    "OriginsUnitOfWork",
    "ReadEveryTime",
    "StoredKeyCache",
    "UsageRecorder",
    "WorkspaceDirectory",
    "WorkspaceStatus",
]


@dataclass(frozen=True, slots=True)
class KeyListing:
    """Which keys a page of a workspace lists: only ``created_by``'s when it is set; the deleted
    ones too when ``show_deleted`` (the purged tombstones never)."""

    workspace_id: str
    created_by: str | None
    show_deleted: bool


class KeyRepository(Protocol):
    async def get(self, workspace_id: str, key_id: str, *, lock: bool = False) -> ApiKey | None: ...
    async def by_request_id(
        self, workspace_id: str, created_by: str, request_id: str
    ) -> ApiKey | None: ...
    async def add(self, key: ApiKey, request_id: str | None) -> None: ...
    async def save(self, key: ApiKey) -> None: ...
    async def list(self, listing: KeyListing, after: str, limit: int) -> list[ApiKey]: ...
    async def find_by_digests(self, digests: Sequence[bytes]) -> ApiKey | None: ...
    async def rehash(self, key_id: str, old: KeyHash, new: KeyHash) -> None: ...
    async def touch_many(self, uses: Sequence[tuple[str, datetime]]) -> None: ...
    async def deleted_unpurged(
        self, deleted_before: datetime, after: str, limit: int
    ) -> builtins.list[ApiKey]: ...


class KeysUnitOfWork(AuditedUnitOfWork, Protocol):
    """The keys use cases' transaction (``adapters.repository.SqlKeysUnitOfWork`` in production),
    with its audit outbox (``servicekit.ports.AuditedUnitOfWork``)."""

    @property
    def keys(self) -> KeyRepository: ...


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"
    MISSING = "missing"


class WorkspaceDirectory(Protocol):
    """The workspaces service, as the keys service needs it."""

    async def status(self, workspace_id: str) -> WorkspaceStatus: ...
    async def role_of(self, user_id: str, workspace_id: str) -> Role: ...


class KeyEvent(StrEnum):
    UPDATED = "updated"
    REVOKED = "revoked"
    ROTATED = "rotated"
    DELETED = "deleted"
    UNDELETED = "undeleted"


class InvalidationPublisher(Protocol):
    """Tells every verifier (edge caches) that what it knows about a key is stale."""

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None: ...


class UsageRecorder(Protocol):
    """Collects last-used times and writes them in batches, never one write per request."""

    def record(self, key_id: str, when: datetime) -> None: ...


Digests = tuple[bytes, ...]
"""The digests of one presented secret, one per pepper version of the ring (current first)."""


class StoredKeyCache(Protocol):
    """VerifyApiKey's stored keys by the digests of the presented secret, kept only while every
    change of a key reaches the cache (``adapters.key_cache``); ``read`` asks the database."""

    async def find(
        self, digests: Digests, read: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None: ...

    def used(self, digests: Digests, when: datetime) -> None: ...

    def drop(self, key_id: str) -> None: ...


class ReadEveryTime:
    """A :class:`StoredKeyCache` that keeps nothing (tests, and ``RAILGUARD_KEYS_VERIFY_CACHE_ENTRIES=0``)."""

    async def find(
        self, digests: Digests, read: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None:
        return await read()

    def used(self, digests: Digests, when: datetime) -> None:
        return None

    def drop(self, key_id: str) -> None:
        return None


class OriginLists(Protocol):
    async def active_origin_lists(self, now: datetime) -> builtins.list[builtins.list[str]]: ...


class OriginsUnitOfWork(ReadOnlyUnitOfWork, Protocol):
    @property
    def keys(self) -> OriginLists: ...
