"""Read-only units of work: no transaction round trips, the same reads, and no writes at all."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from servicekit.db import (
    DEFAULT_MAX_OVERFLOW,
    DEFAULT_POOL_SIZE,
    Base,
    ReadOnlyViolation,
    SqlUnitOfWork,
    create_engine,
    dispose_engine,
    pool_settings,
    read_only_session_factory,
    session_factory,
)
from servicekit.settings import load_settings
from sqlalchemy import String, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column


class _Meta(Base):
    __abstract__ = True


class Thing(_Meta):
    __tablename__ = "ro_things"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with _things(database_url) as engine:
        yield engine


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    async with _things(postgres_url) as engine:
        yield engine


@contextlib.asynccontextmanager
async def _things(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Thing.__table__.create)
    async with engine.begin() as conn:
        await conn.execute(insert(Thing.__table__).values(id="a", name="first"))
    try:
        yield engine
    finally:
        await dispose_engine(engine)


async def test_a_read_only_unit_reads_what_is_committed(engine: AsyncEngine) -> None:
    reads = read_only_session_factory(session_factory(engine))
    async with SqlUnitOfWork(reads) as uow:
        row = (await uow.session.execute(select(Thing.__table__).where(Thing.id == "a"))).one()
        assert row.name == "first"
        assert (await uow.session.get(Thing, "a")) is not None
    # a change committed by an ordinary unit is seen by the next read-only one
    async with SqlUnitOfWork(session_factory(engine)) as uow:
        await uow.session.execute(update(Thing).where(Thing.id == "a").values(name="second"))
        await uow.commit()
    async with SqlUnitOfWork(reads) as uow:
        found = await uow.session.scalar(select(Thing.name).where(Thing.id == "a"))
    assert found == "second"


async def test_a_read_only_unit_refuses_every_write(engine: AsyncEngine) -> None:
    reads = read_only_session_factory(engine)
    async with SqlUnitOfWork(reads) as uow:
        with pytest.raises(ReadOnlyViolation):
            await uow.session.execute(update(Thing).where(Thing.id == "a").values(name="x"))
        with pytest.raises(ReadOnlyViolation):
            await uow.session.execute(insert(Thing.__table__).values(id="b", name="x"))
    async with SqlUnitOfWork(reads) as uow:
        uow.session.add(Thing(id="c", name="x"))
        with pytest.raises(ReadOnlyViolation):
            await uow.session.flush()
    async with SqlUnitOfWork(reads) as uow:
        thing = await uow.session.get(Thing, "a")
        assert thing is not None
        thing.name = "changed"
        with pytest.raises(ReadOnlyViolation):  # autoflush before the next query
            await uow.session.execute(select(Thing.name))
    async with SqlUnitOfWork(reads) as uow:
        with pytest.raises(ReadOnlyViolation):
            await uow.commit()
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT id, name FROM ro_things"))).all()
    assert [tuple(r) for r in names] == [("a", "first")]


@pytest.mark.postgres
async def test_no_begin_or_rollback_round_trip_on_postgres(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = pg_engine
    from sqlalchemy.dialects.postgresql import asyncpg as sa_asyncpg

    adapted = sa_asyncpg.AsyncAdapt_asyncpg_connection
    started: list[str] = []
    original = adapted._start_transaction

    async def counting(self: Any) -> None:
        await original(self)
        if self._transaction is not None:
            started.append("BEGIN")

    monkeypatch.setattr(adapted, "_start_transaction", counting)
    sessions = session_factory(engine)
    reads = read_only_session_factory(sessions)
    for _ in range(3):
        async with SqlUnitOfWork(reads) as uow:
            await uow.session.scalar(select(Thing.name).where(Thing.id == "a"))
    assert started == []
    async with SqlUnitOfWork(sessions) as uow:  # the spy does see an ordinary unit's BEGIN
        await uow.session.scalar(select(Thing.name).where(Thing.id == "a"))
    assert started == ["BEGIN"]
    # the pooled connection went back in its default mode: ordinary units stay transactions
    async with SqlUnitOfWork(sessions) as uow:
        await uow.session.execute(update(Thing).where(Thing.id == "a").values(name="rolled back"))
    async with SqlUnitOfWork(reads) as uow:
        assert await uow.session.scalar(select(Thing.name).where(Thing.id == "a")) == "first"


def test_pool_size_and_overflow_are_settings() -> None:
    assert pool_settings(load_settings("workspaces", {})) == {
        "pool_size": DEFAULT_POOL_SIZE,
        "max_overflow": DEFAULT_MAX_OVERFLOW,
    }
    assert DEFAULT_POOL_SIZE >= 32  # the benchmark's 32 in flight never close a connection
    env = {"RAILGUARD_DB_POOL_SIZE": "5", "RAILGUARD_DB_MAX_OVERFLOW": "0"}
    assert pool_settings(load_settings("keys", env)) == {"pool_size": 5, "max_overflow": 0}
    with pytest.raises(ValueError, match="DB_POOL_SIZE"):
        pool_settings(load_settings("keys", {"RAILGUARD_DB_POOL_SIZE": "0"}))
    engine = create_engine("postgresql+asyncpg://u@127.0.0.1:1/x", pool_size=7, max_overflow=3)
    pool: Any = engine.sync_engine.pool
    assert (pool.size(), pool._max_overflow) == (7, 3)
