"""The change feed of a service: what changed, pushed to the edge by a resumable server stream.

(Over 500 lines: the log, the poller with its hole tracking and LISTEN connection, and the
Watch stream share one versioning argument; split, the reasons each relies on would be apart.)

A producer (workspaces, keys, auth) calls :meth:`ChangeLog.record` (or :func:`record_change`)
INSIDE the transaction of each mutation the edge decides from. The row lands in the service's
``<service>_change_log`` table (services may share a database); its id, from the database's
sequence, is the change's *version*. So a rolled-back write is never announced and a committed
one is never lost. :class:`ChangeFeed` (one per process) serves the internal
``railguard.watch.v1.ChangeFeedService/Watch`` RPC:

- while at least one caller watches, one poller reads new rows every ``poll_interval`` (50 ms),
  and at once after a commit in this process that recorded a change. On PostgreSQL each
  recording transaction also sends ``NOTIFY railguard_<table>`` (delivered at its commit, never
  for a rollback) and the poller holds one ``LISTEN`` connection: a commit in any replica wakes
  it at once, so while that connection is up it reads only every ``listen_interval`` (0.5 s,
  the safety net that also proves the database still answers) instead of 20 times a second;
- ids are allocated before commit, so on PostgreSQL a transaction that got id 7 may commit after
  the one that got id 8. The poller remembers every hole below the highest id it has read and
  re-reads it until it appears or ``gap_timeout`` (10 s) passes (then the id is taken as a rolled
  back transaction's). The *watermark* (every change up to it was sent) stops below the oldest
  open hole;
- ``Watch(from_version)`` replays the rows after ``from_version``, sends a ``Bookmark`` (the
  caller is in sync), then live changes and a ``Bookmark`` heartbeat every ``heartbeat`` (0.25 s)
  while the poller is healthy. ``from_version`` 0, older than the retained window or newer than the
  log (another database, a restore) gets ``Reset`` first, then the retained window, then the
  ``Bookmark``. A caller resumes from the last Bookmark's version; a change may then be sent
  twice, never not at all;
- each watcher has a bounded queue: one that falls ``max_queue`` events behind is dropped (the
  stream ends with ``UNAVAILABLE WATCH_TOO_SLOW``) and resumes from its last Bookmark;
- rows older than ``retention`` (1 h, above the access-token lifetime) are deleted, the newest
  row always kept so that versions never restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from railguard.watch.v1 import watch_pb2
from sqlalchemy import (
    Column,
    Index,
    MetaData,
    String,
    Table,
    delete,
    event,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.background import Loop
from servicekit.db import UtcDateTime, serial_key
from servicekit.errors import Unavailable
from servicekit.rows import rowcount

if TYPE_CHECKING:
    from servicekit.runtime import Wiring
    from servicekit.server import Registration

__all__ = [
    "ChangeFeed",
    "ChangeFeedServicer",
    "ChangeLog",
    "FeedEvent",
    "change_log_columns",
    "change_log_name",
    "record_change",
    "registration",
    "wiring",
]

MAX_TOPIC = 32
MAX_KEY = 200
_log = logging.getLogger("servicekit.changefeed")


def change_log_columns() -> list[Column[Any]]:
    """The table's columns, for a service's metadata and its Alembic migration alike."""
    return [
        serial_key("id"),
        Column("topic", String(MAX_TOPIC), nullable=False),
        Column("key", String(MAX_KEY), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
    ]


def change_log_name(service: str) -> str:
    """``<service>_change_log``: services may share one database, each with its own log."""
    return f"{service}_change_log"


class ChangeLog:
    """A service's ``<service>_change_log`` table and the one statement producers write to it."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @classmethod
    def define(cls, service: str, metadata: MetaData) -> ChangeLog:
        """Declare the table on the service's metadata (SQLite: AUTOINCREMENT, ids never repeat)."""
        name = change_log_name(service)
        return cls(
            Table(
                name,
                metadata,
                *change_log_columns(),
                Index(f"ix_{name}_created_at", "created_at"),
                sqlite_autoincrement=True,
            )
        )

    async def record(self, session: AsyncSession, topic: str, key: str) -> None:
        """Record that ``topic``/``key`` changed, in the caller's transaction (committed with it)."""
        await self.record_many(session, topic, [key])

    @property
    def channel(self) -> str:
        """The PostgreSQL notification channel of this log: ``railguard_<table>``."""
        return f"railguard_{self.table.name}"

    async def record_many(self, session: AsyncSession, topic: str, keys: Sequence[str]) -> None:
        """:meth:`record` for several keys of one topic (one statement, and on PostgreSQL the
        notification that wakes every replica's poller when the transaction commits)."""
        if not topic or len(topic) > MAX_TOPIC or any(len(k) > MAX_KEY for k in keys):
            raise ValueError("change topic is 1-32 characters, its key at most 200")
        if not keys:
            return
        now = dt.datetime.now(dt.UTC)
        rows = [{"topic": topic, "key": k, "created_at": now} for k in keys]
        await session.execute(insert(self.table), rows)
        if session.get_bind().dialect.name == "postgresql":
            # queued until COMMIT, dropped by ROLLBACK; repeats in one transaction fold into one
            await session.execute(select(func.pg_notify(self.channel, "")))
        sync = session.sync_session
        if not sync.info.get(_WAKE_FLAG):
            sync.info[_WAKE_FLAG] = True
            # the local poller reads at once instead of at its next tick (other replicas: ≤ 50 ms)
            event.listen(sync, "after_commit", _wake_all)


async def record_change(session: AsyncSession, log: ChangeLog, topic: str, key: str) -> None:
    """Record a change in ``log`` inside the caller's transaction (see :class:`ChangeLog`)."""
    await log.record(session, topic, key)


_FEEDS: weakref.WeakSet[ChangeFeed] = weakref.WeakSet()
_WAKE_FLAG = "railguard_changefeed_wake"


def _wake_all(_session: Any) -> None:
    for feed in list(_FEEDS):
        feed.wake()


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One message of a watch: ``kind`` is "reset", "change" or "bookmark"."""

    kind: str
    version: int = 0
    topic: str = ""
    key: str = ""


_RESET = FeedEvent("reset")
_END = FeedEvent("end")  # the server is shutting down: the stream ends, the caller resumes


class _Watcher:
    def __init__(self, max_queue: int) -> None:
        self.queue: asyncio.Queue[FeedEvent] = asyncio.Queue(max_queue)
        self.dropped = False

    def push(self, item: FeedEvent) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True
            # wake the consumer so it sees it was dropped even while blocked on get()
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(_RESET)


class ChangeFeed:
    """The process's poller of ``change_log`` and its watchers (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        log: ChangeLog,
        *,
        poll_interval: float = 0.05,
        listen_interval: float = 0.5,
        heartbeat: float = 0.25,
        gap_timeout: float = 10.0,
        retention: float = 3600.0,
        max_queue: int = 10_000,
        batch: int = 1000,
        max_gaps: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._t = log.table
        self._channel = log.channel
        self.poll_interval, self.heartbeat = poll_interval, heartbeat
        self.listen_interval = listen_interval
        self.gap_timeout, self.retention = gap_timeout, retention
        self._max_queue, self._batch, self._max_gaps = max_queue, batch, max_gaps
        self._clock = clock
        self._watchers: set[_Watcher] = set()
        self._poller = Loop(f"change-feed:{log.table.name}")
        self._listener = Loop(f"change-feed-listen:{log.table.name}")
        self.listening = False  # a LISTEN connection is up: other replicas' commits wake us
        self._ready: asyncio.Event | None = None
        self._last = 0  # the highest id read
        self._gaps: dict[int, float] = {}  # id not yet seen below _last -> when first missed
        self._healthy_at = -1e9
        self._pruned_at = -1e9
        self._draining = False
        _FEEDS.add(self)

    # -- the poller ---------------------------------------------------------------------------

    @property
    def table_name(self) -> str:
        return str(self._t.name)

    @property
    def watermark(self) -> int:
        """Every change with a version up to this one has been sent to the current watchers."""
        return min(self._gaps) - 1 if self._gaps else self._last

    @property
    def gaps(self) -> frozenset[int]:
        return frozenset(self._gaps)

    @property
    def healthy(self) -> bool:
        """The poller read the log recently (heartbeats claim nothing otherwise)."""
        window = max(1.0, 10 * self.poll_interval, 2 * self.listen_interval)
        return self._clock() - self._healthy_at < window

    def wake(self) -> None:
        self._poller.poke()

    @property
    def draining(self) -> bool:
        """:meth:`drain` was called: the process is shutting down."""
        return self._draining

    def drain(self) -> None:
        """End every watch now (shutdown): the callers resume at another replica at once, and the
        server's grace is not spent waiting for streams that never end on their own."""
        self._draining = True
        for watcher in list(self._watchers):
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(_END)

    async def _start(self) -> None:
        if not self._poller.running:
            ready = self._ready = asyncio.Event()
            self._poller.start(lambda: self._run(ready))
        if not self._listener.running:
            self._listener.start(self._listen)
        assert self._ready is not None
        await self._ready.wait()

    async def _run(self, ready: asyncio.Event) -> None:
        while not ready.is_set():
            try:
                await self._begin()
                ready.set()
            except Exception as exc:  # noqa: BLE001 - the database may be down: retry
                _log.warning("change feed cannot read its log", extra={"error": type(exc).__name__})
                if not await self._poller.pause(max(self.poll_interval, 0.25)):
                    return
        failing = False
        while self._watchers and await self._poller.pause(
            self.listen_interval if self.listening else self.poll_interval
        ):
            try:
                while await self.poll_once() >= self._batch:
                    pass  # a backlog: read on at once
                if self._clock() - self._pruned_at > 60.0:
                    await self.prune()
                failing = False
            except Exception as exc:  # noqa: BLE001 - retried at the next tick
                if not failing:
                    _log.warning("change feed poll failed", extra={"error": type(exc).__name__})
                failing = True

    async def _listen(self) -> None:
        """Hold ``LISTEN <channel>`` on one pooled connection while anyone watches (PostgreSQL;
        elsewhere nothing to do); reconnect a second after it is lost, meanwhile poll fast."""
        engine = self._sessions.kw.get("bind")
        if engine is None or engine.dialect.name != "postgresql":
            return
        lost_logged = False
        while self._watchers and not self._listener.stopping:
            try:
                await self._listen_once(engine)
                lost_logged = False
            except Exception as exc:  # noqa: BLE001 - the database may be down: poll, retry
                if not lost_logged:
                    _log.warning(
                        "change feed cannot listen; polling every %.2f s",
                        self.poll_interval,
                        extra={"error": type(exc).__name__},
                    )
                    lost_logged = True
            if not await self._listener.pause(1.0):
                return

    async def _listen_once(self, engine: AsyncEngine) -> None:
        """One LISTEN connection, until it is lost, nobody watches or the feed closes."""
        lost = asyncio.Event()

        def woken(*_: object) -> None:
            self._poller.poke()

        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None  # an open connection has its asyncpg connection
            await driver.add_listener(self._channel, woken)
            driver.add_termination_listener(lambda *_: lost.set())
            self.listening = True
            self._poller.poke()  # read once: a commit may have come before the LISTEN
            try:
                while self._watchers and not lost.is_set():
                    if not await self._listener.pause(1.0):
                        break  # the feed closes
            finally:
                self.listening = False
            if lost.is_set():
                await conn.invalidate()
                raise ConnectionError("the LISTEN connection was lost")
            await driver.remove_listener(self._channel, woken)

    async def _begin(self) -> None:
        """Start after the newest row; a hole among the recent ids may be a transaction still
        running, so each one is watched as a gap."""
        async with self._sessions() as session:
            newest = (await session.execute(select(func.max(self._t.c.id)))).scalar()
            self._last, self._gaps = int(newest or 0), {}
            if newest:
                floor = max(0, int(newest) - self._max_gaps)
                ids = (
                    await session.execute(select(self._t.c.id).where(self._t.c.id > floor))
                ).scalars()
                present = {int(i) for i in ids}
                now = self._clock()
                self._gaps = {i: now for i in range(floor + 1, int(newest)) if i not in present}
        self._healthy_at = self._clock()

    async def poll_once(self) -> int:
        """Read the rows after the last one and the open holes; push them to every watcher."""
        now = self._clock()
        for gap, since in list(self._gaps.items()):
            if now - since > self.gap_timeout:
                del self._gaps[gap]  # a rolled-back transaction's id: never coming
        condition = self._t.c.id > self._last
        if self._gaps:
            condition = or_(condition, self._t.c.id.in_(sorted(self._gaps)[: self._batch]))
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(self._t.c.id, self._t.c.topic, self._t.c.key)
                    .where(condition)
                    .order_by(self._t.c.id)
                    .limit(self._batch)
                )
            ).all()
        before = self.watermark
        fresh = 0
        for row in rows:
            version = int(row.id)
            if version in self._gaps:
                del self._gaps[version]
            elif version > self._last:
                fresh += 1
                for missing in range(self._last + 1, version):
                    if len(self._gaps) < self._max_gaps:
                        self._gaps[missing] = now
                self._last = version
            else:
                continue  # already sent
            self._push(FeedEvent("change", version, row.topic, row.key))
        self._healthy_at = self._clock()
        if self.watermark != before:
            self._push(FeedEvent("bookmark", self.watermark))
        return fresh

    async def prune(self) -> int:
        """Delete rows older than the retention window, keeping the newest row."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.retention)
        async with self._sessions() as session:
            newest = (await session.execute(select(func.max(self._t.c.id)))).scalar()
            if newest is None:
                return 0
            result = await session.execute(
                delete(self._t).where(self._t.c.created_at < cutoff, self._t.c.id < newest)
            )
            await session.commit()
        self._pruned_at = self._clock()
        return rowcount(result)

    def _push(self, item: FeedEvent) -> None:
        for watcher in list(self._watchers):
            watcher.push(item)

    # -- a watch ------------------------------------------------------------------------------

    async def watch(self, from_version: int) -> AsyncIterator[FeedEvent]:  # noqa: C901 - one stream: reset, replay, bookmark, then live, in order
        """The events of one Watch call (see the module docstring); raises Unavailable when the
        watcher was too slow and is dropped."""
        watcher = _Watcher(self._max_queue)
        self._watchers.add(watcher)  # before the replay: nothing committed meanwhile is missed
        try:
            await self._start()
            reset, replay_from = from_version == 0, from_version
            async with self._sessions() as session:
                newest = (await session.execute(select(func.max(self._t.c.id)))).scalar()
            if newest is None or from_version > int(newest):
                reset = True  # a version this log never gave: another database, or a restore
            if reset:
                replay_from = 0
                yield _RESET
            sent = replay_from
            while True:
                async with self._sessions() as session:
                    rows = (
                        await session.execute(
                            select(self._t.c.id, self._t.c.topic, self._t.c.key)
                            .where(self._t.c.id > sent)
                            .order_by(self._t.c.id)
                            .limit(self._batch)
                        )
                    ).all()
                    oldest = (await session.execute(select(func.min(self._t.c.id)))).scalar()
                if not reset and oldest is not None and from_version < int(oldest) - 1:
                    # rows after from_version were pruned: the caller cannot catch up
                    reset, from_version = True, 0
                    sent = 0
                    yield _RESET
                    continue
                for row in rows:
                    yield FeedEvent("change", int(row.id), row.topic, row.key)
                if len(rows) < self._batch:
                    break
                sent = int(rows[-1].id)
            synced = self.watermark if reset else max(self.watermark, from_version)
            yield FeedEvent("bookmark", synced)
            while not self._draining:
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                    async with asyncio.timeout(self.heartbeat):
                        item = await watcher.queue.get()
                except TimeoutError:
                    if self.healthy and watcher.queue.empty():
                        yield FeedEvent("bookmark", max(self.watermark, synced))
                    continue
                if item is _END:
                    return
                if watcher.dropped:
                    raise Unavailable(
                        "the watcher fell behind; resume from the last bookmark",
                        reason="WATCH_TOO_SLOW",
                    )
                if item.kind == "bookmark":
                    item = FeedEvent("bookmark", max(item.version, synced))
                yield item
        finally:
            self._watchers.discard(watcher)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    async def close(self) -> None:
        """Stop the poller between two reads (never inside one) and forget the watchers."""
        self._watchers.clear()
        await self._listener.stop()
        await self._poller.stop()


def to_proto(item: FeedEvent) -> watch_pb2.WatchEvent:
    if item.kind == "reset":
        return watch_pb2.WatchEvent(reset=watch_pb2.Reset())
    if item.kind == "change":
        return watch_pb2.WatchEvent(
            change=watch_pb2.Change(version=item.version, topic=item.topic, key=item.key)
        )
    return watch_pb2.WatchEvent(bookmark=watch_pb2.Bookmark(version=item.version))


class ChangeFeedServicer:
    """``Watch``: the feed's events as protos (callable by the edge only, see the contract)."""

    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed

    async def Watch(  # noqa: N802 - the RPC's name
        self, request: watch_pb2.WatchRequest, context: object
    ) -> AsyncIterator[watch_pb2.WatchEvent]:
        async for item in self.feed.watch(request.from_version):
            yield to_proto(item)


def registration(feed: ChangeFeed) -> Registration:
    """The Watch servicer, for a composition root's ``serve(...)``."""
    from railguard.watch.v1 import watch_pb2_grpc

    from servicekit.server import Registration

    return Registration(
        watch_pb2_grpc.add_ChangeFeedServiceServicer_to_server,
        ChangeFeedServicer(feed),
        watch_pb2,
        drain=feed.drain,
    )


def wiring(
    service: Registration,
    sessions: async_sessionmaker[AsyncSession],
    log: ChangeLog,
    on_stop: Sequence[Callable[[], Awaitable[None]]],
    feed: ChangeFeed | None = None,
) -> Wiring:
    """A composition root's :class:`~servicekit.runtime.Wiring`: ``service`` and the Watch of the
    change feed read from ``log`` (what the edges keep their pushed state from; ``feed`` when the
    root follows it itself). ``on_stop`` runs in reverse after the feed closes, so its streams
    end before the engine is disposed."""
    from servicekit.runtime import Wiring

    feed = feed or ChangeFeed(sessions, log)
    return Wiring([service, registration(feed)], on_stop=[*on_stop, feed.close])
