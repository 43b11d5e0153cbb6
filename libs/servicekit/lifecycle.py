"""Workspace life reaching every service: lifecycle events, their relay, and what a receiver keeps.

The workspaces service is the one authority on a workspace's life. Each delete, restore and purge
bumps the workspace's lifecycle ``version`` and records one :class:`LifecycleEvent` per receiving
service (keys, credentials) in that receiver's outbox table, in the same transaction as the change.
The outbox and relay are the audit ones (:class:`~servicekit.outbox.AuditOutbox`,
:class:`~servicekit.outbox.AuditRelay`): an event travels in an :class:`~servicekit.audit.AuditEvent`
envelope (action ``workspace.lifecycle``, state and version in its metadata), so the relay's
ordering, batching, retries with backoff and at-least-once delivery are the ones already tested.
One outbox per receiver, so a receiver that is down holds back only its own events.

A receiver keeps one row per workspace it has heard about (:class:`LifecycleStore`, table
``workspace_lifecycle``) and applies an event only when :func:`supersedes` says so: a higher
version than the one held, and never out of PURGED. Replays and reordering change nothing. Its use
cases ask :class:`WorkspaceGate` before acting; a workspace it has never heard about is active
(every delete is delivered at least once, and the workspaces migration that introduced the events
queued one for every workspace already deleted or purged). A purge event runs the receiver's own
``destroy`` (its secret material for the workspace) in the transaction that records it.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from railguard.workspaces.v1 import lifecycle_pb2
from sqlalchemy import BigInteger, Column, MetaData, String, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.audit import AuditAction, AuditEvent, Outcome
from servicekit.clients import call
from servicekit.clock import Clock, SystemClock
from servicekit.db import UtcDateTime
from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound
from servicekit.outbox import AuditOutbox, outbox_table
from servicekit.rows import rowcount
from servicekit.wire import enum_from, event_time

__all__ = [
    "LIFECYCLE_ACTION",
    "MAX_APPLY_BATCH",
    "GrpcLifecycleSink",
    "Held",
    "LifecycleApplier",
    "LifecycleReceiver",
    "LifecycleEvent",
    "LifecycleState",
    "LifecycleStore",
    "WorkspaceGate",
    "event_from_proto",
    "event_to_proto",
    "events_from_request",
    "lifecycle_outbox",
    "lifecycle_table_columns",
    "purge_recorder",
    "supersedes",
]

LIFECYCLE_ACTION = AuditAction.WORKSPACE_LIFECYCLE
MAX_APPLY_BATCH = 500


_R = TypeVar("_R")


class _LifecycleRequest(Protocol):
    """Any service's ``ApplyWorkspaceLifecycleRequest``: its events."""

    @property
    def events(self) -> Sequence[lifecycle_pb2.WorkspaceLifecycleEvent]: ...


class LifecycleState(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"
    PURGED = "purged"


_TO_PB = {
    LifecycleState.ACTIVE: lifecycle_pb2.LIFECYCLE_STATE_ACTIVE,
    LifecycleState.DELETED: lifecycle_pb2.LIFECYCLE_STATE_DELETED,
    LifecycleState.PURGED: lifecycle_pb2.LIFECYCLE_STATE_PURGED,
}
_FROM_PB = {v: k for k, v in _TO_PB.items()}


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """A workspace entered ``state`` at ``version`` (1, 2, 3... per workspace) at ``time``."""

    id: str
    workspace_id: str
    state: LifecycleState
    version: int
    time: dt.datetime

    def __post_init__(self) -> None:
        uuid.UUID(self.id)
        if not self.workspace_id or len(self.workspace_id) > 64:
            raise ValueError("workspace_id is 1-64 characters")
        if self.version < 1:
            raise ValueError("version starts at 1")
        if self.time.tzinfo is None:
            raise ValueError("naive datetime")
        object.__setattr__(self, "state", LifecycleState(self.state))

    @classmethod
    def new(
        cls, workspace_id: str, state: LifecycleState, version: int, time: dt.datetime
    ) -> LifecycleEvent:
        return cls(str(uuid.uuid4()), workspace_id, state, version, time)

    def envelope(self) -> AuditEvent:
        """The event as an outbox row's payload (never appended to an audit log)."""
        return AuditEvent(
            id=self.id,
            workspace_id=self.workspace_id,
            actor="system",
            action=LIFECYCLE_ACTION,
            target=f"workspaces/{self.workspace_id}",
            outcome=Outcome.SUCCESS,
            request_id="",
            client_ip="",
            time=self.time,
            metadata={"state": self.state.value, "version": str(self.version)},
        )

    @classmethod
    def from_envelope(cls, event: AuditEvent) -> LifecycleEvent:
        if event.action != LIFECYCLE_ACTION:
            raise ValueError(f"not a lifecycle event: {event.action}")
        return cls(
            event.id,
            event.workspace_id,
            LifecycleState(event.metadata["state"]),
            int(event.metadata["version"]),
            event.time,
        )


def event_to_proto(event: LifecycleEvent) -> lifecycle_pb2.WorkspaceLifecycleEvent:
    msg = lifecycle_pb2.WorkspaceLifecycleEvent(
        id=event.id,
        workspace_id=event.workspace_id,
        state=_TO_PB[event.state],
        version=event.version,
    )
    msg.event_time.FromDatetime(event.time)
    return msg


def event_from_proto(msg: lifecycle_pb2.WorkspaceLifecycleEvent) -> LifecycleEvent:
    """The event a message carries; ValueError when it is malformed."""
    state = enum_from(_FROM_PB, msg.state, "state")
    return LifecycleEvent(msg.id, msg.workspace_id, state, msg.version, event_time(msg))


# --- the producer side ------------------------------------------------------------------------


def lifecycle_outbox(receiver: str, metadata: MetaData) -> AuditOutbox:
    """Declare ``workspace_lifecycle_outbox_<receiver>``: the audit outbox's columns and index."""
    return AuditOutbox(outbox_table(f"workspace_lifecycle_outbox_{receiver}", metadata))


class GrpcLifecycleSink:
    """An :class:`~servicekit.audit.AuditSink` that hands lifecycle envelopes to a receiver's
    ``ApplyWorkspaceLifecycle`` RPC (``request_type`` is that service's request message)."""

    def __init__(
        self,
        method: Callable[..., Awaitable[Any]],
        request_type: Callable[..., Any],
        *,
        timeout: float = 10.0,
    ) -> None:
        self._method, self._request_type, self._timeout = method, request_type, timeout

    async def append(self, events: Sequence[AuditEvent]) -> None:
        request = self._request_type(
            events=[event_to_proto(LifecycleEvent.from_envelope(e)) for e in events]
        )
        await call(self._method, request, timeout=self._timeout)


# --- the receiver side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Held:
    """What a receiver holds about a workspace."""

    state: LifecycleState
    version: int


def supersedes(held: Held | None, event: LifecycleEvent) -> bool:
    """Whether ``event`` changes what is held: PURGED is final; otherwise the higher version wins.

    A purge applies over any version not yet purged: destroying secrets the authority says are
    gone is never wrong, and a purge is always a workspace's last event.
    """
    if held is None:
        return True
    if held.state is LifecycleState.PURGED:
        return False
    if event.state is LifecycleState.PURGED:
        return True
    return event.version > held.version


def is_alive(held: Held | None) -> bool:
    """Never heard of (so never deleted) or active."""
    return held is None or held.state is LifecycleState.ACTIVE


def refusal(held: Held) -> FailedPrecondition | NotFound:
    """The error a workspace-scoped call gets once its workspace is deleted or purged."""
    if held.state is LifecycleState.PURGED:
        return NotFound("workspace not found", reason="WORKSPACE_NOT_FOUND")
    return FailedPrecondition("the workspace is deleted", reason="WORKSPACE_DELETED")


def lifecycle_table_columns() -> list[Column[Any]]:
    """The receiver table's columns, for its table definition and its Alembic migration alike."""
    return [
        Column("workspace_id", String(64), primary_key=True),
        Column("state", String(16), nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("event_id", String(36), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    ]


class LifecycleStore:
    """A receiver's ``workspace_lifecycle`` table and the statements on it."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @classmethod
    def define(cls, metadata: MetaData) -> LifecycleStore:
        return cls(Table("workspace_lifecycle", metadata, *lifecycle_table_columns()))

    async def get(
        self, session: AsyncSession, workspace_id: str, *, lock: bool = False
    ) -> Held | None:
        stmt = select(self.table.c.state, self.table.c.version).where(
            self.table.c.workspace_id == workspace_id
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await session.execute(stmt)).one_or_none()
        return None if row is None else Held(LifecycleState(row.state), int(row.version))

    async def apply(self, session: AsyncSession, event: LifecycleEvent, now: dt.datetime) -> bool:
        """Record ``event`` when it supersedes what is held (row locked); whether it did.

        Two receivers racing to insert the same workspace's first row: one fails on the primary
        key, its transaction rolls back, and the relay sends the batch again.
        """
        held = await self.get(session, event.workspace_id, lock=True)
        if not supersedes(held, event):
            return False
        values = {
            "state": event.state.value,
            "version": event.version,
            "event_id": event.id,
            "updated_at": now,
        }
        if held is None:
            await session.execute(
                self.table.insert().values(workspace_id=event.workspace_id, **values)
            )
        else:
            await session.execute(
                update(self.table)
                .where(self.table.c.workspace_id == event.workspace_id)
                .values(**values)
            )
        return True


class WorkspaceGate:
    """What a receiver's use cases ask before acting in a workspace (one indexed read)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: LifecycleStore) -> None:
        self._sessions, self._store = sessions, store

    async def held(self, workspace_id: str) -> Held | None:
        async with self._sessions() as session:
            held = await self._store.get(session, workspace_id)
            await session.rollback()
        return held

    async def alive(self, workspace_id: str) -> bool:
        return is_alive(await self.held(workspace_id))

    async def require_alive(self, workspace_id: str) -> None:
        """Raise FAILED_PRECONDITION ``WORKSPACE_DELETED`` (or NOT_FOUND once purged)."""
        held = await self.held(workspace_id)
        if held is not None and not is_alive(held):
            raise refusal(held)


Destroy = Callable[[AsyncSession, str, dt.datetime], Awaitable[Mapping[str, int]]]
"""A receiver's purge of one workspace's secret material, in the given transaction; counts."""

AfterPurge = Callable[[AsyncSession, LifecycleEvent, Mapping[str, int]], Awaitable[None]]
"""Runs in the purge's transaction after ``destroy``, e.g. to record an audit event."""

OnApplied = Callable[[AsyncSession, LifecycleEvent], Awaitable[None]]
"""Runs in the transaction of every event applied (not of one skipped), e.g. a change-feed row."""


def purge_recorder(outbox: AuditOutbox, action: str) -> AfterPurge:
    """A receiver's ``after_purge``: one ``action`` audit event in the purge's transaction.

    The event names the workspace and carries only the counts of what was destroyed and the
    lifecycle version, never a secret or an identifier of what was destroyed.
    """

    async def record(
        session: AsyncSession, event: LifecycleEvent, counts: Mapping[str, int]
    ) -> None:
        await outbox.record(
            session,
            AuditEvent.new(
                workspace_id=event.workspace_id,
                actor="service:workspaces",
                action=action,
                target=f"workspaces/{event.workspace_id}",
                time=event.time,
                metadata={
                    **{k: str(v) for k, v in counts.items()},
                    "lifecycle_version": str(event.version),
                },
            ),
        )

    return record


async def purge_workspace_rows(
    session: AsyncSession,
    table: Any,
    workspace_id: str,
    now: dt.datetime,
    **destroyed: object,
) -> int:
    """Purge every row of ``table`` in ``workspace_id`` not purged yet, in the caller's transaction.

    ``destroyed`` empties the row's secret material (its ciphertext, digests, lookup hash…); the
    row stays as a tombstone with ``purged_at`` at ``now``, and a row that was never deleted is
    marked deleted at the same instant, exactly as the per-item purge job leaves one. ``table``
    is a mapped class with ``workspace_id``, ``purged_at`` and ``deleted_at``. The rows purged.
    """
    result = await session.execute(
        update(table)
        .where(table.workspace_id == workspace_id, table.purged_at.is_(None))
        .values(purged_at=now, deleted_at=func.coalesce(table.deleted_at, now), **destroyed)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def events_from_request(
    messages: Sequence[lifecycle_pb2.WorkspaceLifecycleEvent],
) -> list[LifecycleEvent]:
    """The events of an ``ApplyWorkspaceLifecycle`` request; INVALID_ARGUMENT on a malformed one."""
    events: list[LifecycleEvent] = []
    for i, msg in enumerate(messages):
        try:
            events.append(event_from_proto(msg))
        except ValueError:
            raise InvalidArgument.field(
                f"events[{i}]", "is not a valid lifecycle event", reason="INVALID_LIFECYCLE_EVENT"
            ) from None
    return events


class LifecycleApplier:
    """The receiver's ``ApplyWorkspaceLifecycle`` use case: each event in its own transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: LifecycleStore,
        destroy: Destroy,
        *,
        after_purge: AfterPurge | None = None,
        after_commit: Callable[[], None] = lambda: None,
        on_applied: OnApplied | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._sessions, self._store, self._destroy = sessions, store, destroy
        self._on_applied = on_applied  # in each applied event's transaction (a change feed row)
        self._after_purge, self._after_commit = after_purge, after_commit
        self._clock = clock or SystemClock()

    async def serve(self, request: _LifecycleRequest, response: Callable[..., _R]) -> _R:
        """Serve ``ApplyWorkspaceLifecycle``: apply the request's events; ``response`` built with
        the counts (``applied``, ``skipped``). INVALID_ARGUMENT on a malformed event."""
        applied, skipped = await self.apply(events_from_request(request.events))
        return response(applied=applied, skipped=skipped)

    async def apply(self, events: Sequence[LifecycleEvent]) -> tuple[int, int]:
        """Apply the events in order; (applied, skipped as already held or superseded)."""
        if len(events) > MAX_APPLY_BATCH:
            raise InvalidArgument.field(
                "events", f"at most {MAX_APPLY_BATCH} per call", reason="TOO_MANY_EVENTS"
            )
        applied = skipped = 0
        purged = False
        for event in events:
            async with self._sessions() as session:
                now = self._clock.now()
                if not await self._store.apply(session, event, now):
                    await session.rollback()
                    skipped += 1
                    continue
                if self._on_applied is not None:
                    await self._on_applied(session, event)
                if event.state is LifecycleState.PURGED:
                    counts = await self._destroy(session, event.workspace_id, now)
                    if self._after_purge is not None:
                        await self._after_purge(session, event, counts)
                    purged = True
                await session.commit()
                applied += 1
        if purged:
            self._after_commit()
        return applied, skipped


class LifecycleReceiver:
    """The ``ApplyWorkspaceLifecycle`` RPC of a service that holds workspace data (auth, keys,
    credentials). Its servicer lists this class before its generated base, sets ``lifecycle``
    (the applier of its tables) and names its contract's response message."""

    lifecycle: LifecycleApplier
    lifecycle_response: ClassVar[Callable[..., Any]]

    async def ApplyWorkspaceLifecycle(self, request: Any, context: object) -> Any:
        """Apply the events, in order; the counts applied and skipped (see :meth:`serve`)."""
        return await self.lifecycle.serve(request, self.lifecycle_response)
