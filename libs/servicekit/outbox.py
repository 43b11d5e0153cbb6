"""Outboxes: rows written in a change's transaction, then drained by a relay into a sink.

An adapter module (SQLAlchemy): the pure event is :mod:`servicekit.audit`.

- :func:`outbox_table` declares an outbox table (``seq``, ``event_id``, ``payload``,
  ``created_at``, ``sent_at`` and an index on the unsent rows); the audit outboxes, the lifecycle
  outboxes (``servicekit.lifecycle``) and the mail outboxes (``servicekit.mail``) all use it, and
  :func:`audit_outbox_columns` gives the same columns to the Alembic migrations.
- :class:`AuditOutbox` is a service's ``<service>_audit_outbox`` and the statements on it.
- :class:`OutboxRepository` binds any outbox to a unit of work's session: a use case calls
  ``await uow.outbox.record(event)`` before it commits, so the row exists exactly when the change
  does.
- :class:`OutboxRelay` (:class:`AuditRelay` for audit events) reads unsent rows in order, hands
  them in batches to a sink and marks them sent. The sink is idempotent by id, so a relay that
  crashes between sending and marking just sends the batch again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import (
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.audit import AuditEvent
from servicekit.background import Loop, settle
from servicekit.clock import Clock, SystemClock
from servicekit.db import UtcDateTime, serial_key
from servicekit.errors import RailguardError
from servicekit.failures import unavailable_from

__all__ = [
    "AuditOutbox",
    "AuditRelay",
    "OutboxRelay",
    "OutboxRepository",
    "OutboxSink",
    "OutboxSource",
    "OutboxWriter",
    "audit_outbox_columns",
    "outbox_table",
]

_log = logging.getLogger("servicekit.audit")


def audit_outbox_columns() -> list[Column[Any]]:
    """The outbox's columns, for a service's table definition and its Alembic migration alike."""
    return [
        serial_key("seq"),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("sent_at", UtcDateTime(), nullable=True),
    ]


def outbox_table(name: str, metadata: MetaData) -> Table:
    """Declare the outbox table ``name`` on ``metadata``: its columns and ``ix_<name>_unsent``."""
    return Table(
        name, metadata, *audit_outbox_columns(), Index(f"ix_{name}_unsent", "sent_at", "seq")
    )


class AuditOutbox:
    """A service's ``<service>_audit_outbox`` table and the statements on it."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @classmethod
    def define(cls, service: str, metadata: MetaData) -> AuditOutbox:
        """Declare ``<service>_audit_outbox`` on the service's own metadata."""
        return cls(outbox_table(f"{service}_audit_outbox", metadata))

    async def record(self, session: AsyncSession, event: AuditEvent) -> None:
        """Insert the event in the caller's transaction: it commits or rolls back with the change."""
        await session.execute(
            self.table.insert().values(
                event_id=event.id, payload=event.to_json(), created_at=event.time, sent_at=None
            )
        )

    async def unsent(self, session: AsyncSession, limit: int) -> list[AuditEvent]:
        stmt = (
            select(self.table.c.payload)
            .where(self.table.c.sent_at.is_(None))
            .order_by(self.table.c.seq)
            .limit(limit)
        )
        rows = (await session.execute(stmt)).scalars().all()
        return [AuditEvent.from_dict(json.loads(payload)) for payload in rows]

    async def mark_sent(self, session: AsyncSession, ids: Sequence[str], now: dt.datetime) -> None:
        await session.execute(
            update(self.table).where(self.table.c.event_id.in_(list(ids))).values(sent_at=now)
        )


T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class OutboxWriter(Protocol[T_contra]):
    """An outbox that records an item in a given session (:class:`AuditOutbox`, a mail outbox)."""

    async def record(self, session: AsyncSession, item: T_contra, /) -> None: ...


class OutboxRepository(Generic[T]):
    """An outbox bound to a unit of work's session: ``record(item)`` writes in its transaction.

    ``outbox`` is None for a unit of work built without that outbox (a job that sends no mail,
    say): recording into it is then a programming error, never a silent drop.
    """

    def __init__(self, session: AsyncSession, outbox: OutboxWriter[T] | None) -> None:
        self.session, self.outbox = session, outbox

    async def record(self, item: T) -> None:
        if self.outbox is None:
            raise RuntimeError("this unit of work was built without this outbox")
        await self.outbox.record(self.session, item)


# --- the relay --------------------------------------------------------------------------------


class OutboxItem(Protocol):
    """Something an outbox holds: it is marked sent by its id."""

    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=OutboxItem)
ItemT_contra = TypeVar("ItemT_contra", bound=OutboxItem, contravariant=True)


class OutboxSource(Protocol[ItemT]):
    """An outbox the relay drains (:class:`AuditOutbox`, ``servicekit.mail.MailOutbox``)."""

    async def unsent(self, session: AsyncSession, limit: int) -> list[ItemT]: ...

    async def mark_sent(
        self, session: AsyncSession, ids: Sequence[str], now: dt.datetime
    ) -> None: ...


class OutboxSink(Protocol[ItemT_contra]):
    """Where a relay hands its items (an ``AuditSink`` for events, a mail sender for mails)."""

    async def append(self, events: Sequence[ItemT_contra]) -> None: ...


class OutboxRelay(Generic[ItemT]):
    """A background task that drains an outbox into a sink, in order, at least once.

    :class:`AuditRelay` relays audit events; ``servicekit.mail`` relays mails with the same
    mechanism: any :class:`OutboxSource` and :class:`OutboxSink` of one item type will do;
    ``name`` names the task and its log lines.

    ``start()`` from the composition root and put ``stop`` in ``Wiring.on_stop``. ``poke()``
    wakes it right after a commit; otherwise it polls every ``interval`` seconds. Several
    replicas may relay the same outbox: a batch sent twice is harmless because the sink skips
    event ids it already holds.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxSource[ItemT],
        sink: OutboxSink[ItemT],
        *,
        clock: Clock | None = None,
        batch_size: int = 100,
        interval: float = 1.0,
        max_backoff: float = 30.0,
        name: str = "audit-relay",
    ) -> None:
        self._sessions, self._outbox, self._sink, self._name = sessions, outbox, sink, name
        self._clock = clock or SystemClock()
        self._batch_size, self._interval, self._max_backoff = batch_size, interval, max_backoff
        self._loop = Loop(name)

    async def run_once(self) -> int:
        """Send one batch of unsent events and mark them sent; the number sent."""
        async with self._sessions() as session:
            events = await self._outbox.unsent(session, self._batch_size)
            await session.rollback()
        if not events:
            return 0
        await self._sink.append(events)
        async with self._sessions() as session:
            await self._outbox.mark_sent(session, [e.id for e in events], self._clock.now())
            await session.commit()
        return len(events)

    async def drain(self) -> int:
        """Relay until the outbox is empty; the number sent."""
        total = 0
        while sent := await self.run_once():
            total += sent
        return total

    def poke(self) -> None:
        self._loop.poke()

    def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self, final_drain: float = 2.0) -> None:
        """Stop the loop between batches, then ship what is queued for at most ``final_drain`` s.

        Called after the server drained its in-flight calls, so their events are in the outbox.
        Whatever the sink does not take in time stays in the outbox (durable) for the next start
        or another replica's relay: nothing acknowledged is lost either way.
        """
        if not self._loop.running:
            return
        await self._loop.stop()
        try:
            await settle(self.drain(), final_drain, f"{self._name} final drain")
        except Exception:  # noqa: BLE001 - the rows wait in the outbox
            _log.warning("audit events left queued at shutdown; they are relayed on next start")

    async def _run(self) -> None:
        delay = self._interval
        while True:
            try:
                await self.drain()
                delay = self._interval
            except Exception as exc:  # noqa: BLE001 - a down sink must not kill the relay; rows wait
                # a known outage (sink or database down) is one line; anything else its traceback
                known = isinstance(exc, RailguardError) or unavailable_from(exc) is not None
                _log.warning("%s failed; retrying", self._name, exc_info=not known)
                delay = min(max(delay * 2, self._interval), self._max_backoff)
            if not await self._loop.pause(delay):
                return


class AuditRelay(OutboxRelay[AuditEvent]):
    """The relay of a service's audit outbox (see :class:`OutboxRelay`)."""
