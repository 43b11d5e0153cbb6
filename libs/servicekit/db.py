"""Async SQLAlchemy: one engine per process, one session per unit of work, UTC timestamps.

PostgreSQL (asyncpg) in production and CI; SQLite (aiosqlite) is the embedded default.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import sqlalchemy.exc
from sqlalchemy import BigInteger, Column, DateTime, Integer, TypeDecorator, and_, event, or_
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql import Select

if TYPE_CHECKING:
    from servicekit.settings import Settings

_Select = TypeVar("_Select", bound="Select[*tuple[Any, ...]]")

__all__ = [
    "DEFAULT_MAX_OVERFLOW",
    "DEFAULT_POOL_SIZE",
    "Base",
    "ReadOnlySession",
    "ReadOnlyViolation",
    "SqlUnitOfWork",
    "UtcDateTime",
    "create_engine",
    "dispose_engine",
    "page_after",
    "page_before",
    "page_newest_first",
    "pool_settings",
    "read_only_session_factory",
    "serial_key",
    "session_factory",
]


def serial_key(name: str) -> Column[Any]:
    """A 64-bit primary key the database numbers in insertion order (INTEGER on SQLite, whose
    only auto-incrementing type it is): the order relays and watchers read a table in."""
    return Column(
        name, BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


def page_after(stmt: _Select, key: Any, after: object, limit: int) -> _Select:
    """``stmt``'s next keyset page: the rows whose ``key`` comes after the cursor ``after``, in
    ``key`` order, at most ``limit`` (no OFFSET: a page costs the same however deep it is)."""
    return stmt.where(key > after).order_by(key).limit(limit)


def page_before(stmt: _Select, key: Any, before: object, limit: int) -> _Select:
    """``stmt``'s next page of a log shown newest first (deliveries, audit entries): the rows whose
    ``key`` comes before the cursor ``before`` (all of them when it is empty or zero), in
    descending ``key`` order, at most ``limit``."""
    if before:
        stmt = stmt.where(key < before)
    return stmt.order_by(key.desc()).limit(limit)


def page_newest_first(
    stmt: _Select, created_at: Any, row_id: Any, after: tuple[dt.datetime, str] | None, limit: int
) -> _Select:
    """``stmt``'s next page of a list shown newest first (sessions, invitations): the rows strictly
    after the ``(created_at, id)`` cursor ``after`` (the first page when None), in ``created_at``
    then ``id`` descending order, at most ``limit`` (no OFFSET, like :func:`page_after`)."""
    if after is not None:
        created, last_id = after
        stmt = stmt.where(or_(created_at < created, and_(created_at == created, row_id < last_id)))
    return stmt.order_by(created_at.desc(), row_id.desc()).limit(limit)


class Base(DeclarativeBase):
    """Declarative base; each service declares its own tables on its own metadata subclass."""


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


POOL_TIMEOUT_SECONDS = 3.0
CONNECT_TIMEOUT_SECONDS = 3.0
# Connections kept open (PostgreSQL): the edge benchmark keeps 32 requests in flight, and each is
# at most one checkout at a time in a backend, so 32 pooled connections never close and reopen
# under it; 8 more may open for a burst (closed again when returned to a full pool).
DEFAULT_POOL_SIZE = 32
DEFAULT_MAX_OVERFLOW = 8


def pool_settings(settings: Settings) -> dict[str, int]:
    """``RAILGUARD_DB_POOL_SIZE`` (≥ 1) and ``RAILGUARD_DB_MAX_OVERFLOW`` (≥ 0) for create_engine."""
    return {
        "pool_size": settings.get_int("DB_POOL_SIZE", DEFAULT_POOL_SIZE, minimum=1),
        "max_overflow": settings.get_int("DB_MAX_OVERFLOW", DEFAULT_MAX_OVERFLOW, minimum=0),
    }


def create_engine(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
) -> AsyncEngine:
    """The process's one engine, with a span per statement when tracing is on."""
    from servicekit.tracing import instrument_engine

    engine = _create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    instrument_engine(engine)
    return engine


def _create_engine(url: str, *, pool_size: int, max_overflow: int) -> AsyncEngine:
    """SQLite gets WAL and a busy timeout so parallel writers queue."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        engine.dialect.do_terminate = _terminate_sqlite_at_once  # type: ignore[method-assign]
        return engine
    # A bounded pool wait and connect timeout make an unreachable or saturated database a prompt
    # UNAVAILABLE, not a hung request. Stale connections: see _ping_when_idle.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS} if "asyncpg" in url else {},
    )
    _ping_when_idle(engine)
    return engine


def _terminate_sqlite_at_once(dbapi_connection: Any) -> None:
    """Close an invalidated aiosqlite connection in its own thread, awaiting nothing.

    SQLAlchemy invalidates a connection whose task was cancelled mid-statement (a client that
    hung up, a deadline, a shutdown) and terminates it: a shielded "graceful" ``close()``, then a
    forced ``stop()``. With aiosqlite the two race for the connection's one worker thread: when
    the stop wins, the graceful close waits for a thread that is gone, forever, and the event
    loop cannot shut down (it hung a test's teardown for 120 s); and ``stop()``'s own future is
    resolved from the thread, which fails once the loop has closed. A file database has no peer
    to say goodbye to, so this queues the close-and-stop step without a future: the thread closes
    the sqlite3 connection and ends, and no task or loop waits for it.
    """
    from aiosqlite import core as aiosqlite_core

    connection = dbapi_connection._connection  # the aiosqlite.Connection
    queue = getattr(connection, "_tx", None)
    if queue is None:  # an aiosqlite this code does not know: its own forced stop
        dbapi_connection._terminate_force_close()
        return
    sqlite = connection._connection
    connection._running, connection._connection = False, None

    def close_and_stop() -> object:
        if sqlite is not None:
            sqlite.close()
        return aiosqlite_core._STOP_RUNNING_SENTINEL

    queue.put_nowait((None, close_and_stop))


DISPOSE_WAIT_SECONDS = 2.0
_DISPOSE_STEP = 0.01


async def dispose_engine(engine: AsyncEngine, wait: float = DISPOSE_WAIT_SECONDS) -> None:
    """Dispose of ``engine`` once its checked-out connections are back, waiting up to ``wait`` s.

    ``dispose()`` closes only the connections in the pool: one a call is still using is given
    back to the discarded pool afterwards and never closed (on PostgreSQL an open server
    session until the process exits). A stopping server disposes of its engine while its last
    calls finish, so this waits for them, bounded, then disposes.
    """
    checked_out = getattr(engine.sync_engine.pool, "checkedout", lambda: 0)
    for _ in range(int(wait / _DISPOSE_STEP)):  # polled: a pool has no awaitable "all back"
        if checked_out() == 0:
            break
        await asyncio.sleep(_DISPOSE_STEP)
    await engine.dispose()


PING_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine, idle: float = PING_IDLE_SECONDS) -> None:
    """At checkout, drop a pooled connection the server closed, and ping one idle for ``idle`` s.

    A connection that died with a restarted database is found this way before a request uses it
    (the first query after a restart succeeds), while a busy pool pays no round trip: SQLAlchemy's
    ``pool_pre_ping`` pinged on every checkout, about 0.1 ms each, two per edge request in
    workspaces. A connection that breaks while in use is a disconnect the dialect recognises, so
    SQLAlchemy invalidates it and the request is a retryable UNAVAILABLE.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["rg_checkin"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # free: asyncpg marks a connection closed as soon as the loop has seen the server go
        raw = getattr(dbapi_conn, "_connection", None)
        is_closed = getattr(raw, "is_closed", None)
        if callable(is_closed) and is_closed():
            raise sqlalchemy.exc.DisconnectionError("pooled connection closed by the server")
        last = record.info.get("rg_checkin")
        if last is None or time.monotonic() - last < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure means: replace this connection
            raise sqlalchemy.exc.DisconnectionError("stale pooled connection") from exc


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class ReadOnlySession(Session):
    """A session that refuses to write: no flush of pending changes, no DML, no commit.

    Its connections are in autocommit mode (see :func:`read_only_session_factory`), where a write
    would take effect at once, statement by statement; so a write is refused before it is sent.
    """

    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise ReadOnlyViolation("a read-only unit of work cannot write")
        super().flush(objects)

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(statement, "is_dml", False):
            raise ReadOnlyViolation("a read-only unit of work cannot write")
        return super().execute(statement, *args, **kwargs)

    def commit(self) -> None:
        raise ReadOnlyViolation("a read-only unit of work has nothing to commit")


class ReadOnlyViolation(RuntimeError):
    """A programming error: a write through a read-only unit of work (never reaches the database)."""


def read_only_session_factory(
    sessions: async_sessionmaker[AsyncSession] | AsyncEngine,
) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only units of work, on the same engine and pool as ``sessions``.

    Each statement runs on its own, in autocommit mode: no ``BEGIN`` before the first statement
    and no ``ROLLBACK`` when the unit ends (PostgreSQL: two round trips saved per unit; asyncpg
    then runs the statement outside a transaction block). A unit of one statement (the hot
    reads: ResolveAccess, GetWorkspace, VerifyApiKey's lookup, the JWKS) sees exactly what it
    would in a transaction. Writes are refused (:class:`ReadOnlySession`).
    """
    engine = sessions if isinstance(sessions, AsyncEngine) else sessions.kw["bind"]
    if not isinstance(engine, AsyncEngine):
        raise TypeError("read_only_session_factory needs an engine-bound session factory")
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        sync_session_class=ReadOnlySession,
    )


class SqlUnitOfWork:
    """A transaction: ``async with uow: ...; await uow.commit()``. Rolls back unless committed.

    Built on a :func:`read_only_session_factory`, it is a read-only unit of work: no
    transaction, and any write raises :class:`ReadOnlyViolation`.
    """

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self._bind(self.session)
        return self

    def _bind(self, session: AsyncSession) -> None:
        """Subclasses build their repositories on the session here."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed and returns the connection to the pool
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()
