"""In-memory fakes of the credentials service's ports (``credentials_service.ports``).

A unit of work works on a copy of :class:`State` and swaps it in on commit, so an uncommitted
change (and its audit events) is lost exactly as a rolled-back transaction would be. The key
manager is the real local keyring on a temporary file: values are really encrypted, bound to
their context, and a test can take it down.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Generic, Self, TypeVar

from credentials_service.domain import Credential, Delivery, WebhookTrigger
from credentials_service.ports import DuplicateRequest
from servicekit.audit import AuditEvent
from servicekit.kms import KeyInfo, LocalKeyring, MasterKey
from servicekit.kms.errors import unavailable
from servicekit.lifecycle import Held, LifecycleState, is_alive, refusal


@dataclass
class State:
    """What the database would hold."""

    credentials: dict[str, Credential] = field(default_factory=dict)
    triggers: dict[str, WebhookTrigger] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    requests: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    outbox: list[AuditEvent] = field(default_factory=list)


T = TypeVar("T", Credential, WebhookTrigger)


class _Records(Generic[T]):
    """One table of soft-deletable records; reads return copies, as rows would be."""

    def __init__(self, state: State, kind: str) -> None:
        self.s, self.kind = state, kind

    @property
    def rows(self) -> dict[str, T]:
        rows: dict[str, T] = getattr(self.s, self.kind)
        return rows

    async def get(self, workspace_id: str, item_id: str, *, lock: bool = False) -> T | None:
        item = self.rows.get(item_id)
        return copy.copy(item) if item is not None and item.workspace_id == workspace_id else None

    async def by_request_id(self, workspace_id: str, user_id: str, request_id: str) -> T | None:
        item_id = self.s.requests.get((self.kind, workspace_id, user_id, request_id))
        return copy.copy(self.rows[item_id]) if item_id else None

    async def add(self, item: T, request_id: str | None) -> None:
        key = (self.kind, item.workspace_id, item.created_by, request_id or "")
        if request_id and key in self.s.requests:
            raise DuplicateRequest
        self.rows[item.id] = copy.copy(item)
        if request_id:
            self.s.requests[key] = item.id

    async def save(self, item: T) -> None:
        assert item.id in self.rows
        self.rows[item.id] = copy.copy(item)

    async def page(
        self, workspace_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[T]:
        items = [
            copy.copy(i)
            for i in sorted(self.rows.values(), key=lambda i: i.id)
            if i.workspace_id == workspace_id
            and i.id > after
            and (i.purged_at is None if show_deleted else i.deleted_at is None)
        ]
        return items[:limit]

    async def stale(self, below_version: int, after: str, limit: int) -> list[T]:
        items = sorted(self.rows.values(), key=lambda i: i.id)
        due = [
            copy.copy(i)
            for i in items
            if i.key_version < below_version and i.sealed is not None and i.id > after
        ]
        return due[:limit]

    async def count_stale(self, below_version: int) -> int:
        return sum(
            1 for i in self.rows.values() if i.key_version < below_version and i.sealed is not None
        )

    def _set_sealed(self, item: T, ciphertext: str) -> None:
        raise NotImplementedError

    async def replace_ciphertext(self, item_id: str, old: str, new: str, version: int) -> bool:
        item = self.rows.get(item_id)
        if item is None or item.sealed != old:
            return False
        self._set_sealed(item, new)
        item.key_version = version
        return True


class FakeCredentials(_Records[Credential]):
    def __init__(self, state: State) -> None:
        super().__init__(state, "credentials")

    def _set_sealed(self, item: Credential, ciphertext: str) -> None:
        item.ciphertext = ciphertext

    async def purge_due(self, now: dt.datetime, after: str, limit: int) -> list[Credential]:
        items = sorted(self.rows.values(), key=lambda i: i.id)
        return [copy.copy(i) for i in items if i.purge_due(now) and i.id > after][:limit]


class FakeTriggers(_Records[WebhookTrigger]):
    def __init__(self, state: State) -> None:
        super().__init__(state, "triggers")

    def _set_sealed(self, item: WebhookTrigger, ciphertext: str) -> None:
        item.token_ciphertext = ciphertext

    async def by_token_hash(self, digest: bytes) -> WebhookTrigger | None:
        found = [t for t in self.rows.values() if t.token_hash == digest]
        return copy.copy(found[0]) if found else None

    async def deleted_unpurged(
        self, deleted_before: dt.datetime, after: str, limit: int
    ) -> list[WebhookTrigger]:
        items = sorted(self.rows.values(), key=lambda i: i.id)
        return [
            copy.copy(t)
            for t in items
            if t.deleted_at is not None
            and t.deleted_at <= deleted_before
            and t.purged_at is None
            and t.id > after
        ][:limit]


class FakeDeliveries:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, delivery: Delivery) -> None:
        self.s.deliveries.append(delivery)

    async def page(self, trigger_id: str, before: str, limit: int) -> list[Delivery]:
        rows = sorted(
            (
                d
                for d in self.s.deliveries
                if d.trigger_id == trigger_id and (not before or d.id < before)
            ),
            key=lambda d: d.id,
            reverse=True,
        )
        return rows[:limit]


class FakeOutbox:
    def __init__(self, state: State) -> None:
        self.s = state

    async def record(self, event: AuditEvent) -> None:
        self.s.outbox.append(event)


class Store:
    """The committed state, and the unit-of-work factory the use cases take."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0
        self.opened = 0

    def __call__(self) -> FakeUow:
        return FakeUow(self)

    @property
    def events(self) -> list[AuditEvent]:
        return self.state.outbox

    def actions(self) -> list[str]:
        return [e.action for e in self.state.outbox]


class FakeUow:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._work = State()

    @property
    def credentials(self) -> FakeCredentials:
        return FakeCredentials(self._work)

    @property
    def triggers(self) -> FakeTriggers:
        return FakeTriggers(self._work)

    @property
    def deliveries(self) -> FakeDeliveries:
        return FakeDeliveries(self._work)

    @property
    def outbox(self) -> FakeOutbox:
        return FakeOutbox(self._work)

    async def __aenter__(self) -> Self:
        self._store.opened += 1
        self._work = copy.deepcopy(self._store.state)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None  # what was not committed is dropped with the copy

    async def commit(self) -> None:
        self._store.state = self._work
        self._work = copy.deepcopy(self._work)
        self._store.commits += 1


class FakeGate:
    """What the lifecycle table says of each workspace; unknown workspaces are alive."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}

    def delete(self, workspace_id: str) -> None:
        self.held[workspace_id] = Held(LifecycleState.DELETED, 1)

    def purge(self, workspace_id: str) -> None:
        self.held[workspace_id] = Held(LifecycleState.PURGED, 2)

    async def alive(self, workspace_id: str) -> bool:
        return is_alive(self.held.get(workspace_id))

    async def require_alive(self, workspace_id: str) -> None:
        held = self.held.get(workspace_id)
        if held is not None and not is_alive(held):
            raise refusal(held)


class FakeKeyManager:
    """The real local keyring (a temporary file, a fresh master key) that a test can take
    down: every call then fails as an unreachable key manager would."""

    def __init__(self, directory: Path) -> None:
        self.keyring = LocalKeyring(directory / "keyring", MasterKey.generate())
        self.down = False
        self.encrypted: list[str] = []  # the contexts values were sealed under

    def _check(self) -> None:
        if self.down:
            raise unavailable()

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        self._check()
        self.encrypted.append(context)
        return await self.keyring.encrypt(plaintext, context)

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        self._check()
        return await self.keyring.decrypt(ciphertext, context)

    async def rewrap(self, ciphertext: str, context: str) -> str:
        self._check()
        return await self.keyring.rewrap(ciphertext, context)

    async def rewrap_batch(self, items: Sequence[tuple[str, str]]) -> list[str]:
        self._check()
        return await self.keyring.rewrap_batch(items)

    async def rotate(self) -> int:
        self._check()
        return await self.keyring.rotate()

    async def key_info(self) -> KeyInfo:
        self._check()
        return await self.keyring.key_info()

    async def set_min_decryption_version(self, version: int) -> KeyInfo:
        self._check()
        return await self.keyring.set_min_decryption_version(version)
