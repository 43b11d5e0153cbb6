"""In-memory fakes of the keys service's ports, shared by the use-case tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from keys_service.domain import (
    ApiKey,
    KeyEnvironment,
    KeyHash,
    PepperRing,
    PresentedKey,
    Role,
    ScopeSet,
    issue_key,
)
from keys_service.usecases import KeyEvent, KeyListing, WorkspaceStatus
from servicekit.audit import AuditEvent
from testkit.fakes import FakeUnitOfWork


def minted_key(
    ring: PepperRing | None = None,
    *,
    key_id: str = "k",
    workspace_id: str = "w",
    now: datetime | None = None,
) -> tuple[ApiKey, PresentedKey]:
    """A live ``keys:read`` key of user ``u``, issued as the service would: (entity, secret)."""
    return issue_key(
        key_id=key_id,
        workspace_id=workspace_id,
        name="n",
        environment=KeyEnvironment.LIVE,
        scopes=ScopeSet(["keys:read"]),
        creator_rights=ScopeSet(["keys:read"]),
        created_by="u",
        now=now or datetime(2026, 3, 1, tzinfo=UTC),
        ring=ring or PepperRing({1: b"p" * 32}, current=1),
    )


class FakeKeys:
    """The repository: a dict, plus a count of every read so tests can prove "no DB read"."""

    def __init__(self) -> None:
        self.rows: dict[str, ApiKey] = {}
        self.request_ids: dict[tuple[str, str, str], str] = {}
        self.reads = 0
        self.touches: list[tuple[str, datetime]] = []
        self.touch_batches = 0
        self.rehashes = 0
        self.events: list[AuditEvent] = []  # the committed audit outbox

    async def get(self, workspace_id: str, key_id: str, *, lock: bool = False) -> ApiKey | None:
        self.reads += 1
        key = self.rows.get(key_id)
        return key if key and key.workspace_id == workspace_id else None

    async def by_request_id(
        self, workspace_id: str, created_by: str, request_id: str
    ) -> ApiKey | None:
        self.reads += 1
        key_id = self.request_ids.get((workspace_id, created_by, request_id))
        return self.rows[key_id] if key_id else None

    async def add(self, key: ApiKey, request_id: str | None) -> None:
        self.rows[key.id] = key
        if request_id:
            self.request_ids[(key.workspace_id, key.created_by, request_id)] = key.id

    async def save(self, key: ApiKey) -> None:
        self.rows[key.id] = key

    async def list(self, listing: KeyListing, after: str, limit: int) -> list[ApiKey]:
        self.reads += 1
        keys = sorted(
            (
                k
                for k in self.rows.values()
                if k.workspace_id == listing.workspace_id
                and k.id > after
                and (listing.created_by is None or k.created_by == listing.created_by)
                and (listing.show_deleted or k.deleted_at is None)
            ),
            key=lambda k: k.id,
        )
        return keys[:limit]

    async def find_by_digests(self, digests: Sequence[bytes]) -> ApiKey | None:
        self.reads += 1
        for key in self.rows.values():
            hashes = [key.secret_hash, key.previous_secret_hash]
            if any(h is not None and h.digest in digests for h in hashes):
                return key
        return None

    async def rehash(self, key_id: str, old: KeyHash, new: KeyHash) -> None:
        self.rehashes += 1
        key = self.rows[key_id]
        if key.secret_hash == old:
            self.rows[key_id] = dataclasses.replace(key, secret_hash=new)

    async def deleted_unpurged(
        self, deleted_before: datetime, after: str, limit: int
    ) -> list[ApiKey]:
        keys = sorted(
            (
                k
                for k in self.rows.values()
                if k.deleted_at is not None
                and k.deleted_at <= deleted_before
                and k.purged_at is None
                and k.id > after
            ),
            key=lambda k: k.id,
        )
        return keys[:limit]

    async def touch_many(self, uses: Sequence[tuple[str, datetime]]) -> None:
        self.touch_batches += 1
        for key_id, when in uses:
            self.touches.append((key_id, when))
            key = self.rows[key_id]
            if key.last_used_at is None or key.last_used_at < when:
                self.rows[key_id] = dataclasses.replace(key, last_used_at=when)


class FakeOutbox:
    """Events recorded in a unit of work; they reach ``FakeKeys.events`` only on commit."""

    def __init__(self) -> None:
        self.pending: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.pending.append(event)


class FakeUow(FakeUnitOfWork):
    """Outbox events reach ``FakeKeys.events`` only on commit; key rows are written through."""

    def __init__(self, keys: FakeKeys) -> None:
        super().__init__()
        self._keys = keys
        self._outbox = FakeOutbox()

    @property
    def keys(self) -> FakeKeys:
        return self._keys

    @property
    def outbox(self) -> FakeOutbox:
        return self._outbox

    def publish(self) -> None:
        self._keys.events.extend(self._outbox.pending)
        self._outbox.pending = []


class FakeWorkspaces:
    """ResolveAccess as the workspaces service would answer it."""

    def __init__(self) -> None:
        self.deleted: set[str] = set()
        self.missing: set[str] = set()
        self.roles: dict[tuple[str, str], Role] = {}
        self.calls = 0

    async def status(self, workspace_id: str) -> WorkspaceStatus:
        self.calls += 1
        if workspace_id in self.missing:
            return WorkspaceStatus.MISSING
        if workspace_id in self.deleted:
            return WorkspaceStatus.DELETED
        return WorkspaceStatus.ACTIVE

    async def role_of(self, user_id: str, workspace_id: str) -> Role:
        self.calls += 1
        return self.roles.get((user_id, workspace_id), Role.NONE)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, KeyEvent]] = []

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None:
        self.events.append((key.id, event))


class FakeUsage:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, datetime]] = []

    def record(self, key_id: str, when: datetime) -> None:
        self.recorded.append((key_id, when))
