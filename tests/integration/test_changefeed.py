"""servicekit.changefeed on real databases: what is recorded, replayed, resumed, reset and pruned.

The gap test needs PostgreSQL: there ids come from a sequence before commit, so two transactions
can commit out of id order (SQLite serialises writers, so it cannot happen there).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest
from servicekit import changefeed
from servicekit.changefeed import ChangeFeed, ChangeLog, FeedEvent, record_change
from servicekit.db import create_engine, dispose_engine, session_factory
from servicekit.errors import Unavailable
from servicekit.follower import LocalFollower
from sqlalchemy import MetaData, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

_META = MetaData()
_CHANGES = ChangeLog.define("test", _META)
_LOG = _CHANGES.table


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(_META.create_all)
    try:
        yield session_factory(engine)
    finally:
        await dispose_engine(engine)


async def _record(sessions: async_sessionmaker[AsyncSession], topic: str, key: str) -> None:
    async with sessions() as session:
        await record_change(session, _CHANGES, topic, key)
        await session.commit()


async def _take(stream: AsyncIterator[FeedEvent], n: int, within: float = 5.0) -> list[FeedEvent]:
    """The next ``n`` events."""
    out: list[FeedEvent] = []
    async with asyncio.timeout(within):
        while len(out) < n:
            out.append(await anext(stream))
    return out


async def _until(
    stream: AsyncIterator[FeedEvent], wanted: str, within: float = 5.0
) -> list[FeedEvent]:
    """Events up to and including the first of kind ``wanted``."""
    out: list[FeedEvent] = []
    async with asyncio.timeout(within):
        while True:
            item = await anext(stream)
            out.append(item)
            if item.kind == wanted:
                return out


async def _bookmark_reaches(stream: AsyncIterator[FeedEvent], version: int) -> None:
    """Read until a bookmark covers ``version``; a bookmark may lag the rows just replayed (the
    poller's watermark never passes an id hole), never run ahead of them."""
    async with asyncio.timeout(3.0):
        while True:
            item = await anext(stream)
            if item.kind == "bookmark" and item.version >= version:
                return


def _changes(events: list[FeedEvent]) -> list[tuple[str, str]]:
    return [(e.topic, e.key) for e in events if e.kind == "change"]


async def test_a_committed_change_is_streamed_and_a_rolled_back_one_never(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = ChangeFeed(sessions, _CHANGES)
    stream = feed.watch(0)
    try:
        first = await _until(stream, "bookmark")
        assert first[0].kind == "reset"  # from 0: drop whatever you hold
        assert _changes(first) == []
        async with sessions() as session:
            await record_change(session, _CHANGES, "membership", "w1/u1")
            await session.rollback()
        await _record(sessions, "membership", "w1/u2")
        live = [e for e in await _until(stream, "change") if e.kind == "change"]
        assert _changes(live) == [("membership", "w1/u2")]
        bookmark = await _until(stream, "bookmark")
        # PostgreSQL: the rolled-back id is a hole the bookmark stays below until it is given up
        expected = min(feed.gaps) - 1 if feed.gaps else live[0].version
        assert bookmark[-1].version == expected
    finally:
        await stream.aclose()
        await feed.close()


async def test_a_local_commit_wakes_the_poller_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = ChangeFeed(
        sessions, _CHANGES, poll_interval=5.0, heartbeat=10.0
    )  # only a wake-up can be fast
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        started = asyncio.get_running_loop().time()
        await _record(sessions, "session", "s1")
        got = await _until(stream, "change", within=4.0)
        assert _changes(got) == [("session", "s1")]
        assert asyncio.get_running_loop().time() - started < 2.0
    finally:
        await stream.aclose()
        await feed.close()


async def test_resume_replays_only_what_came_after_the_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for i in range(3):
        await _record(sessions, "api_key", f"k{i}")
    feed = ChangeFeed(sessions, _CHANGES)
    stream = feed.watch(0)
    try:
        synced = await _until(stream, "bookmark")
        assert synced[0].kind == "reset"
        assert _changes(synced) == [("api_key", "k0"), ("api_key", "k1"), ("api_key", "k2")]
        seen = max(e.version for e in synced if e.kind == "change")
        assert synced[-1].version <= seen
        await _bookmark_reaches(stream, seen)
    finally:
        await stream.aclose()
    await _record(sessions, "api_key", "k3")  # while nobody watched
    resumed = feed.watch(seen)
    try:
        replay = await _until(resumed, "bookmark")
        assert replay[0].kind != "reset"
        assert _changes(replay) == [("api_key", "k3")]
        assert seen <= replay[-1].version <= replay[-2].version
        await _bookmark_reaches(resumed, replay[-2].version)
    finally:
        await resumed.aclose()
        await feed.close()


async def test_a_version_the_log_never_gave_resets(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Another database, or a restore from a backup: the caller's version is past the log."""
    await _record(sessions, "workspace", "w1")
    feed = ChangeFeed(sessions, _CHANGES)
    stream = feed.watch(10_000)
    try:
        events = await _until(stream, "bookmark")
        assert events[0].kind == "reset"
        assert _changes(events) == [("workspace", "w1")]  # the retained window, replayed
        assert events[-1].version < 10_000
    finally:
        await stream.aclose()
        await feed.close()


async def test_an_empty_log_resets_a_caller_with_a_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = ChangeFeed(sessions, _CHANGES)
    stream = feed.watch(5)
    try:
        events = await _until(stream, "bookmark")
        assert [e.kind for e in events] == ["reset", "bookmark"]
    finally:
        await stream.aclose()
        await feed.close()


async def _age_all(sessions: async_sessionmaker[AsyncSession], hours: float) -> None:
    async with sessions() as session:
        old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
        await session.execute(update(_LOG).values(created_at=old))
        await session.commit()


async def test_retention_prunes_old_rows_keeps_the_newest_and_a_pruned_version_resets(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for i in range(4):
        await _record(sessions, "session", f"s{i}")
    await _age_all(sessions, 2)
    feed = ChangeFeed(sessions, _CHANGES, retention=3600)
    assert await feed.prune() == 3
    async with sessions() as session:
        left = list((await session.execute(select(_LOG.c.id, _LOG.c.key))).all())
    assert [row.key for row in left] == ["s3"]  # versions never restart: the newest stays
    newest = left[0].id
    await _record(sessions, "session", "s4")
    # a caller at version 1 missed the pruned s1, s2: it must drop everything
    stream = feed.watch(1)
    try:
        events = await _until(stream, "bookmark")
        assert events[0].kind == "reset"
        assert _changes(events) == [("session", "s3"), ("session", "s4")]
    finally:
        await stream.aclose()
    # a caller exactly at the window's edge resumes without a reset
    stream = feed.watch(newest - 1)
    try:
        events = await _until(stream, "bookmark")
        assert events[0].kind == "change"
        assert _changes(events) == [("session", "s3"), ("session", "s4")]
    finally:
        await stream.aclose()
        await feed.close()


async def test_after_retention_new_versions_stay_above_the_old_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Even when everything was old: SQLite would reuse ids without AUTOINCREMENT."""
    await _record(sessions, "session", "a")
    await _age_all(sessions, 2)
    feed = ChangeFeed(sessions, _CHANGES, retention=3600)
    await feed.prune()
    async with sessions() as session:
        first = (await session.execute(select(_LOG.c.id))).scalar_one()
        await session.execute(_LOG.delete())  # even an operator emptying the table
        await session.commit()
    await _record(sessions, "session", "b")
    async with sessions() as session:
        second = (await session.execute(select(_LOG.c.id))).scalar_one()
    assert second > first
    await feed.close()


async def test_several_keys_in_one_statement(sessions: async_sessionmaker[AsyncSession]) -> None:
    feed = ChangeFeed(sessions, _CHANGES)
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        async with sessions() as session:
            await _CHANGES.record_many(session, "session", ["s1", "s2", "s3"])
            await _CHANGES.record_many(session, "session", [])
            await session.commit()
        got: list[FeedEvent] = []
        while len(_changes(got)) < 3:
            got += await _until(stream, "change")
        assert _changes(got) == [("session", "s1"), ("session", "s2"), ("session", "s3")]
    finally:
        await stream.aclose()
        await feed.close()


async def test_a_watcher_that_falls_behind_is_dropped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = ChangeFeed(sessions, _CHANGES, max_queue=3)
    stream = feed.watch(0)
    await _until(stream, "bookmark")
    async with sessions() as session:
        await _CHANGES.record_many(session, "session", [f"s{i}" for i in range(10)])
        await session.commit()
    await asyncio.sleep(0.5)  # the poller fills the queue past its bound meanwhile
    with pytest.raises(Unavailable) as caught:
        async with asyncio.timeout(5):
            while True:
                await anext(stream)
    assert caught.value.reason == "WATCH_TOO_SLOW"
    assert feed.watchers == 0
    await feed.close()


async def test_heartbeats_flow_while_idle(sessions: async_sessionmaker[AsyncSession]) -> None:
    feed = ChangeFeed(sessions, _CHANGES, heartbeat=0.1)
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        beats = await _take(stream, 3, within=3.0)
        assert [e.kind for e in beats] == ["bookmark"] * 3
    finally:
        await stream.aclose()
        await feed.close()
    assert feed.watchers == 0


@pytest.fixture
async def pg_sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Out-of-order commits need PostgreSQL: SQLite serialises its writers."""
    engine = create_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.run_sync(_META.create_all)
    try:
        yield session_factory(engine)
    finally:
        await dispose_engine(engine)


@pytest.mark.postgres
async def test_transactions_committing_out_of_id_order_are_both_streamed(
    pg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = pg_sessions
    feed = ChangeFeed(sessions, _CHANGES, poll_interval=0.02)
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        slow = sessions()
        await record_change(
            slow, _CHANGES, "membership", "w/slow"
        )  # takes the lower id, commits last
        await _record(sessions, "membership", "w/fast")
        fast = await _until(stream, "change")
        assert _changes(fast) == [("membership", "w/fast")]
        await asyncio.sleep(0.2)  # several polls see the hole below it
        assert len(feed.gaps) == 1
        assert feed.watermark < fast[-1].version  # a bookmark never claims the open hole
        await slow.commit()
        await slow.close()
        late = await _until(stream, "change")
        assert _changes(late) == [("membership", "w/slow")]
        assert late[-1].version < fast[-1].version
        after = await _until(stream, "bookmark")
        assert after[-1].version >= fast[-1].version and not feed.gaps
    finally:
        await stream.aclose()
        await feed.close()


@pytest.mark.postgres
async def test_a_rolled_back_id_is_given_up_after_the_gap_timeout(
    pg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = pg_sessions
    feed = ChangeFeed(sessions, _CHANGES, poll_interval=0.02, gap_timeout=0.5)
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        doomed = sessions()
        await record_change(doomed, _CHANGES, "membership", "w/doomed")
        await _record(sessions, "membership", "w/kept")
        kept = await _until(stream, "change")
        await doomed.rollback()
        await doomed.close()
        assert feed.gaps
        for _ in range(100):  # noqa: ASYNC110 - polling the feed's state is the point
            if not feed.gaps:
                break
            await asyncio.sleep(0.05)
        assert not feed.gaps
        beat = await _until(stream, "bookmark")
        assert beat[-1].version >= kept[-1].version
        assert _changes(beat) == []
    finally:
        await stream.aclose()
        await feed.close()


@pytest.mark.postgres
async def test_a_poller_started_while_a_transaction_is_open_still_sees_it(
    pg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The first watcher starts the poller; a hole among the recent ids is watched as a gap."""
    sessions = pg_sessions
    slow = sessions()
    await record_change(slow, _CHANGES, "workspace", "w-slow")
    await _record(sessions, "workspace", "w-fast")
    feed = ChangeFeed(sessions, _CHANGES, poll_interval=0.02)
    stream = feed.watch(0)
    try:
        synced = await _until(stream, "bookmark")
        assert _changes(synced) == [("workspace", "w-fast")]
        await slow.commit()
        await slow.close()
        late = await _until(stream, "change")
        assert _changes(late) == [("workspace", "w-slow")]
    finally:
        await stream.aclose()
        await feed.close()


async def _listening(feed: ChangeFeed, want: bool = True, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while feed.listening is not want:  # noqa: ASYNC110 - a flag of the code under test
            await asyncio.sleep(0.02)


@pytest.mark.postgres
async def test_a_commit_in_another_replica_wakes_the_poller_through_notify(
    pg_sessions: async_sessionmaker[AsyncSession], postgres_url: str
) -> None:
    # polls so rare that only the notification can deliver the change in time
    feed = ChangeFeed(pg_sessions, _CHANGES, poll_interval=30.0, listen_interval=30.0)
    changefeed._FEEDS.discard(feed)  # as in another process: no in-process wake-up
    other = create_engine(postgres_url)  # the other replica's pool
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        await _listening(feed)
        async with session_factory(other)() as session:  # a rolled-back change says nothing
            await record_change(session, _CHANGES, "membership", "w/rolled-back")
            await session.rollback()
        started = asyncio.get_running_loop().time()
        await _record(session_factory(other), "membership", "w/u")
        got = await _until(stream, "change", within=3.0)
        assert _changes(got) == [("membership", "w/u")]
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await stream.aclose()
        await feed.close()
        await other.dispose()
    assert not feed.listening


@pytest.mark.postgres
async def test_a_lost_listen_connection_is_replaced_and_polling_covers_the_gap(
    pg_sessions: async_sessionmaker[AsyncSession], postgres_url: str
) -> None:
    feed = ChangeFeed(pg_sessions, _CHANGES, poll_interval=0.05, listen_interval=30.0)
    changefeed._FEEDS.discard(feed)
    other = create_engine(postgres_url)
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        await _listening(feed)
        async with other.connect() as conn:  # the database drops the listener's connection
            killed = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            )
            assert killed.all() == [(True,)]
        await _listening(feed, want=False)
        await _record(session_factory(other), "session", "s-while-lost")  # fast polls again
        assert _changes(await _until(stream, "change", within=2.0)) == [("session", "s-while-lost")]
        await _listening(feed)  # back within about a second
        started = asyncio.get_running_loop().time()
        await _record(session_factory(other), "session", "s-after")
        assert _changes(await _until(stream, "change", within=3.0)) == [("session", "s-after")]
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await stream.aclose()
        await feed.close()
        await other.dispose()


async def test_the_feed_listens_on_postgresql_only(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    feed = ChangeFeed(sessions, _CHANGES)
    stream = feed.watch(0)
    try:
        await _until(stream, "bookmark")
        await _record(sessions, "session", "s1")
        assert _changes(await _until(stream, "change")) == [("session", "s1")]
        if database_url.startswith("postgresql"):
            await _listening(feed)
        else:
            await asyncio.sleep(0.2)
            assert not feed.listening, "SQLite has no LISTEN: the feed polls"
    finally:
        await stream.aclose()
        await feed.close()


async def _until_true(condition: Callable[[], bool], within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - a follower's state, not an event to wait on
            await asyncio.sleep(0.01)


async def test_a_local_follower_hears_every_commit_and_is_live_while_heard(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = ChangeFeed(sessions, _CHANGES, heartbeat=0.05)
    follower = LocalFollower(feed, stale_after=0.3)
    heard: list[tuple[str, str]] = []
    resets: list[int] = []
    follower.on_change.append(lambda topic, key: heard.append((topic, key)))
    follower.on_reset.append(lambda: resets.append(1))
    assert not follower.live  # nothing heard yet: a cache must ask
    follower.start()
    try:
        await _until_true(lambda: follower.live)
        assert resets == [1]  # a first watch starts from a Reset: caches start empty
        await _record(sessions, "api_key", "k1")
        await _until_true(lambda: heard == [("api_key", "k1")])
        await feed.close()  # the poller stops: heartbeats stop, the follower goes stale
        await _until_true(lambda: not follower.live, within=2.0)
    finally:
        await follower.close()
        await feed.close()
    assert not follower.live


async def test_a_local_follower_resumes_from_its_last_bookmark(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = ChangeFeed(sessions, _CHANGES, heartbeat=0.05)
    follower = LocalFollower(feed)
    heard: list[str] = []
    resets: list[int] = []
    follower.on_change.append(lambda topic, key: heard.append(key))
    follower.on_reset.append(lambda: resets.append(1))
    follower.start()
    try:
        await _until_true(lambda: follower.live)
        await _record(sessions, "api_key", "before")
        await _until_true(lambda: heard == ["before"])
        for watcher in list(feed._watchers):  # the stream breaks (a slow consumer, say)
            watcher.dropped = True
            watcher.queue.put_nowait(FeedEvent("reset"))
        await _record(sessions, "api_key", "after")
        await _until_true(lambda: "after" in heard and follower.connects >= 2 and follower.live)
        assert heard.count("before") == 1 and resets == [1]  # resumed, not reset
    finally:
        await follower.close()
        await feed.close()
