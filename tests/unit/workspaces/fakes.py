"""In-memory repositories and unit of work for the workspaces use cases (Cosmic Python fakes)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import testkit.fakes as testkit
from servicekit.audit import AuditEvent
from servicekit.lifecycle import LifecycleEvent
from workspaces_service.domain import Member, Role, Workspace
from workspaces_service.domain.audit_log import AuditEntry, ChainHead


@dataclass
class State:
    """What a database would hold; a unit of work works on a copy and swaps it in on commit."""

    workspaces: dict[str, Workspace] = field(default_factory=dict)
    requests: dict[tuple[str, str], str] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    heads: dict[str, ChainHead] = field(default_factory=dict)
    entries: dict[str, list[AuditEntry]] = field(default_factory=dict)
    outbox: list[AuditEvent] = field(default_factory=list)
    lifecycle: list[LifecycleEvent] = field(default_factory=list)


class FakeWorkspaces:
    def __init__(self, state: State) -> None:
        self.s = state

    async def get(self, workspace_id: str, *, lock: bool = False) -> Workspace | None:
        return copy.copy(self.s.workspaces.get(workspace_id))

    async def get_with_role(self, workspace_id: str, user_id: str) -> tuple[Workspace, Role] | None:
        found = await self.get_with_optional_role(workspace_id, user_id)
        return (found[0], found[1]) if found and found[1] is not None else None

    async def get_with_optional_role(
        self, workspace_id: str, user_id: str
    ) -> tuple[Workspace, Role | None] | None:
        ws = self.s.workspaces.get(workspace_id)
        if ws is None:
            return None
        member = self.s.members.get((workspace_id, user_id))
        return copy.copy(ws), (member.role if member else None)

    async def by_request_id(self, user_id: str, request_id: str) -> Workspace | None:
        ws_id = self.s.requests.get((user_id, request_id))
        return copy.copy(self.s.workspaces[ws_id]) if ws_id else None

    async def add(self, ws: Workspace, created_by: str, request_id: str | None) -> None:
        self.s.workspaces[ws.id] = copy.copy(ws)
        if request_id:
            self.s.requests[(created_by, request_id)] = ws.id

    async def save(self, ws: Workspace) -> None:
        self.s.workspaces[ws.id] = copy.copy(ws)
        if ws.purged:
            self.s.requests = {k: v for k, v in self.s.requests.items() if v != ws.id}

    async def list_for_user(
        self, user_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[tuple[Workspace, Role]]:
        rows = [
            (copy.copy(ws), self.s.members[(ws.id, user_id)].role)
            for ws in sorted(self.s.workspaces.values(), key=lambda w: w.id)
            if (ws.id, user_id) in self.s.members
            and ws.id > after
            and (
                not ws.deleted
                or (show_deleted and self.s.members[(ws.id, user_id)].role == Role.OWNER)
            )
            and not ws.purged
        ]
        return rows[:limit]

    async def with_lifecycle(self, after: str, limit: int) -> list[Workspace]:
        rows = [
            copy.copy(ws)
            for ws in sorted(self.s.workspaces.values(), key=lambda w: w.id)
            if ws.lifecycle_version > 0 and ws.id > after
        ]
        return rows[:limit]

    async def deleted_unpurged(self, after: str, limit: int) -> list[Workspace]:
        rows = [
            copy.copy(ws)
            for ws in sorted(self.s.workspaces.values(), key=lambda w: w.id)
            if ws.deleted and not ws.purged and ws.id > after
        ]
        return rows[:limit]


class FakeMembers:
    def __init__(self, state: State) -> None:
        self.s = state

    async def get(self, workspace_id: str, user_id: str) -> Member | None:
        return copy.copy(self.s.members.get((workspace_id, user_id)))

    async def add(self, member: Member) -> None:
        self.s.members[(member.workspace_id, member.user_id)] = copy.copy(member)

    async def set_role(self, workspace_id: str, user_id: str, role: Role) -> None:
        self.s.members[(workspace_id, user_id)].role = role

    async def remove(self, workspace_id: str, user_id: str) -> None:
        self.s.members.pop((workspace_id, user_id), None)

    async def remove_all(self, workspace_id: str) -> int:
        keys = [k for k in self.s.members if k[0] == workspace_id]
        for k in keys:
            del self.s.members[k]
        return len(keys)

    async def count_owners(self, workspace_id: str) -> int:
        return sum(
            1 for (w, _), m in self.s.members.items() if w == workspace_id and m.role is Role.OWNER
        )

    async def list(self, workspace_id: str, after: str, limit: int) -> list[Member]:
        rows = sorted(
            (m for (w, u), m in self.s.members.items() if w == workspace_id and u > after),
            key=lambda m: m.user_id,
        )
        return [copy.copy(m) for m in rows[:limit]]


class FakeAuditLog:
    def __init__(self, state: State) -> None:
        self.s = state

    async def lock_head(self, workspace_id: str) -> ChainHead:
        return self.s.heads.setdefault(workspace_id, ChainHead())

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        stored = {e.event.id for entries in self.s.entries.values() for e in entries}
        return stored & set(event_ids)

    async def append(self, entries: Sequence[AuditEntry], received_at: dt.datetime) -> None:
        for entry in entries:
            self.s.entries.setdefault(entry.event.workspace_id, []).append(entry)
        if entries:
            last = entries[-1]
            self.s.heads[last.event.workspace_id] = ChainHead(last.sequence, last.hash)

    async def newest_first(self, workspace_id: str, before: int, limit: int) -> list[AuditEntry]:
        rows = [
            e
            for e in reversed(self.s.entries.get(workspace_id, []))
            if not before or e.sequence < before
        ]
        return rows[:limit]

    async def in_order(self, workspace_id: str, after: int, limit: int) -> list[AuditEntry]:
        rows = [e for e in self.s.entries.get(workspace_id, []) if e.sequence > after]
        return rows[:limit]


class FakeOutbox:
    def __init__(self, state: State) -> None:
        self.s = state

    async def record(self, event: AuditEvent) -> None:
        self.s.outbox.append(event)


class FakeLifecycleOutbox:
    def __init__(self, state: State) -> None:
        self.s = state

    async def record(self, event: LifecycleEvent) -> None:
        self.s.lifecycle.append(event)


class FakeUnitOfWork(testkit.FakeUnitOfWork):
    """Works on a deep copy of the shared state; commit publishes it, anything else discards it."""

    def __init__(self, db: FakeDatabase) -> None:
        super().__init__()
        self.db = db
        self.committed = False

    def begin(self) -> None:
        self.state = copy.deepcopy(self.db.state)
        self.workspaces = FakeWorkspaces(self.state)
        self.members = FakeMembers(self.state)
        self.audit_log = FakeAuditLog(self.state)
        self.outbox = FakeOutbox(self.state)
        self.lifecycle = FakeLifecycleOutbox(self.state)

    def publish(self) -> None:
        self.db.state = self.state
        self.db.commits += 1
        self.committed = True


@dataclass
class FakeDatabase:
    state: State = field(default_factory=State)
    commits: int = 0

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


@dataclass(frozen=True)
class User:
    id: str
    email: str


class FakeDirectory:
    def __init__(self, *user_ids: str) -> None:
        self.users = {u: User(u, f"{u}@example.com") for u in user_ids}

    async def find_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    async def find_by_id(self, user_id: str) -> User | None:
        return self.users.get(user_id)
