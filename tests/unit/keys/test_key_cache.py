"""VerifyApiKey's cache of stored keys (keys_service.adapters.key_cache): the rules it keeps."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import cast

import pytest
from keys_service.adapters.key_cache import DEFAULT_ENTRIES, FollowedKeyCache, followed_cache
from keys_service.config import KeysSettings
from keys_service.domain import ApiKey
from keys_service.ports import ReadEveryTime
from servicekit.changefeed import ChangeFeed
from servicekit.settings import load_settings

from .fakes_keys import minted_key


class Reads:
    """The database side: what ``find_by_digests`` returns, and how often it was asked."""

    def __init__(self, key: ApiKey | None) -> None:
        self.key, self.count = key, 0

    async def __call__(self) -> ApiKey | None:
        self.count += 1
        return self.key


class Live:
    def __init__(self) -> None:
        self.value = True

    def __call__(self) -> bool:
        return self.value


def _key(key_id: str = "k", workspace_id: str = "w") -> ApiKey:
    return minted_key(key_id=key_id, workspace_id=workspace_id)[0]


async def test_a_kept_key_is_answered_without_a_read_while_live() -> None:
    cache, reads = FollowedKeyCache(Live()), Reads(_key())
    assert await cache.find((b"d",), reads) is reads.key
    assert await cache.find((b"d",), reads) is reads.key
    assert reads.count == 1 and cache.hits == 1 and len(cache) == 1


async def test_nothing_is_kept_or_answered_while_the_feed_is_not_live() -> None:
    live = Live()
    cache, reads = FollowedKeyCache(live), Reads(_key())
    live.value = False
    await cache.find((b"d",), reads)
    await cache.find((b"d",), reads)
    assert reads.count == 2 and len(cache) == 0
    live.value = True
    await cache.find((b"d",), reads)
    live.value = False  # kept while live, but never used once the feed goes quiet
    await cache.find((b"d",), reads)
    assert reads.count == 4


async def test_an_unknown_secret_is_never_kept() -> None:
    cache, reads = FollowedKeyCache(Live()), Reads(None)
    assert await cache.find((b"junk",), reads) is None
    assert await cache.find((b"junk",), reads) is None
    assert reads.count == 2 and len(cache) == 0


async def test_a_change_of_the_key_drops_it_and_others_stay() -> None:
    cache = FollowedKeyCache(Live())
    first, second = Reads(_key("k1")), Reads(_key("k2"))
    await cache.find((b"1",), first)
    await cache.find((b"2",), second)
    cache.on_change("api_key", "k1")
    await cache.find((b"1",), first)
    await cache.find((b"2",), second)
    assert first.count == 2 and second.count == 1


async def test_a_workspace_change_drops_every_key_of_that_workspace_only() -> None:
    cache = FollowedKeyCache(Live())
    a1, a2, b1 = Reads(_key("a1", "wa")), Reads(_key("a2", "wa")), Reads(_key("b1", "wb"))
    for digest, reads in ((b"a1",), a1), ((b"a2",), a2), ((b"b1",), b1):
        await cache.find(digest, reads)
    cache.on_change("workspace", "wa")
    assert len(cache) == 1
    for digest, reads in ((b"a1",), a1), ((b"a2",), a2), ((b"b1",), b1):
        await cache.find(digest, reads)
    assert (a1.count, a2.count, b1.count) == (2, 2, 1)


async def test_an_unknown_topic_or_a_reset_drops_everything() -> None:
    cache = FollowedKeyCache(Live())
    await cache.find((b"d",), Reads(_key()))
    cache.on_change("something_new", "x")
    assert len(cache) == 0
    await cache.find((b"d",), Reads(_key()))
    cache.clear()
    assert len(cache) == 0


async def test_a_read_that_overlapped_a_change_is_not_kept() -> None:
    cache = FollowedKeyCache(Live())
    release = asyncio.Event()
    key = _key()

    async def slow_read() -> ApiKey | None:
        await release.wait()
        return key  # what the database held before the change

    pending = asyncio.create_task(cache.find((b"d",), slow_read))
    await asyncio.sleep(0)
    cache.on_change("api_key", key.id)  # committed and heard while the read was in flight
    release.set()
    assert await pending is key
    assert len(cache) == 0


async def test_it_is_bounded_and_drops_the_least_recently_used() -> None:
    cache = FollowedKeyCache(Live(), max_entries=2)
    reads = {n: Reads(_key(f"k{n}")) for n in range(3)}
    await cache.find((b"0",), reads[0])
    await cache.find((b"1",), reads[1])
    await cache.find((b"0",), reads[0])  # 0 is used again: 1 is now the oldest
    await cache.find((b"2",), reads[2])
    assert len(cache) == 2
    await cache.find((b"1",), reads[1])
    assert reads[1].count == 2 and reads[0].count == 1
    cache.on_change("api_key", "k1")  # the index follows evictions: nothing stale is left
    assert len(cache) == 1


async def test_with_no_room_nothing_is_kept() -> None:
    cache, reads = FollowedKeyCache(Live(), max_entries=0), Reads(_key())
    await cache.find((b"d",), reads)
    await cache.find((b"d",), reads)
    assert reads.count == 2 and len(cache) == 0


async def test_a_use_is_written_into_the_kept_row_without_invalidating_anything() -> None:
    key = _key()
    cache, reads = FollowedKeyCache(Live()), Reads(key)
    await cache.find((b"d",), reads)
    generation = cache._kept.generation
    when = key.created_at + dt.timedelta(minutes=5)
    cache.used((b"d",), when)
    kept = await cache.find((b"d",), reads)
    assert kept is not None and kept.last_used_at == when
    assert reads.count == 1 and cache._kept.generation == generation
    cache.used((b"other",), when)  # a row not kept: nothing to do
    assert len(cache) == 1


def test_the_bound_is_a_setting_refused_below_zero_and_zero_keeps_nothing() -> None:
    assert KeysSettings.load(load_settings("keys", {})).verify_cache_entries == DEFAULT_ENTRIES
    off = KeysSettings.load(load_settings("keys", {"RAILGUARD_KEYS_VERIFY_CACHE_ENTRIES": "0"}))
    assert off.verify_cache_entries == 0
    bad = load_settings("keys", {"RAILGUARD_KEYS_VERIFY_CACHE_ENTRIES": "-1"})
    with pytest.raises(ValueError, match="RAILGUARD_KEYS_VERIFY_CACHE_ENTRIES must be at least 0"):
        KeysSettings.load(bad)


async def test_with_the_cache_off_the_feed_is_not_followed_and_every_call_reads() -> None:
    follower, stored = followed_cache(cast(ChangeFeed, _NoFeed()), 0)
    assert isinstance(stored, ReadEveryTime) and follower._task is None
    reads = Reads(_key())
    await stored.find((b"d",), reads)
    await stored.find((b"d",), reads)
    assert reads.count == 2


class _NoFeed:
    table_name = "keys_change_log"  # what a follower is named after; never watched here
