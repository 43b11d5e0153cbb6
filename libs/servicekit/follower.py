"""Following a change feed (servicekit.changefeed): what a cache of pushed state relies on.

A :class:`FeedFollower` holds one stream of a producer's feed: it resumes from the last
Bookmark's version, reconnects with a backoff capped at 1 s, and on ``Reset`` (or a kind it does
not know) tells its caches to drop everything. It is :attr:`~FeedFollower.live` while it is in
sync (a Bookmark after the replay) and heard from the producer within ``stale_after`` (1 s; the
producer's heartbeats come every 0.25 s, and only while its poller reads the log). A cache uses
what it holds only while its follower is live; otherwise it asks every time.

Two kinds of stream: the edge follows each producer over gRPC (``edge_service.feeds``), and a
producer may follow its own feed in-process (:class:`LocalFollower`: the keys service's
verification cache), with the same rules either way.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar, cast

if TYPE_CHECKING:  # the edge follows over gRPC and must not load the feed's SQLAlchemy side
    from servicekit.changefeed import ChangeFeed, FeedEvent

__all__ = [
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "STALE_AFTER",
    "FeedFollower",
    "KeptEntries",
    "Listener",
    "LocalFollower",
]

_log = logging.getLogger("servicekit.follower")

STALE_AFTER = 1.0
BACKOFF_INITIAL, BACKOFF_MAX = 0.1, 1.0

Listener = Callable[[str, str], None]
"""Told of every change: (topic, key)."""
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
A = TypeVar("A")  # what the ask of KeptEntries.through answers: a V, or None


class FeedFollower(abc.ABC):
    """One stream of a producer's feed (see the module docstring); subclasses open it."""

    def __init__(
        self,
        name: str,
        *,
        stale_after: float = STALE_AFTER,
        backoff_max: float = BACKOFF_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._stale_after, self._backoff_max = stale_after, backoff_max
        self._clock = clock
        self.version = 0  # the last Bookmark's: every change up to it was heard
        self.synced = False
        self.last_message = -1e9
        self.on_change: list[Listener] = []
        self.on_reset: list[Callable[[], None]] = []
        self.connects = 0  # streams opened (for tests and metrics)
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        """In sync and heard from within ``stale_after``: the caches may answer."""
        return self.synced and self._clock() - self.last_message < self._stale_after

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"feed-{self.name}")

    async def close(self) -> None:
        task, self._task = self._task, None
        self.synced = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def apply(self, kind: str, version: int = 0, topic: str = "", key: str = "") -> None:
        """Apply one message of the stream: a change, a bookmark, or anything else (a reset)."""
        self.last_message = self._clock()
        if kind == "change":
            for listener in self.on_change:
                listener(topic, key)
        elif kind == "bookmark":
            self.version = version
            self.synced = True
        else:  # reset, or a kind this follower does not know: drop everything (fail safe)
            self.synced = False
            self.version = 0
            for reset in self.on_reset:
                reset()

    @abc.abstractmethod
    async def _follow(self) -> None:
        """Open one stream from :attr:`version` and :meth:`apply` its messages until it ends."""

    async def _run(self) -> None:
        backoff = BACKOFF_INITIAL
        lost_logged = False
        while True:
            try:
                self.connects += 1
                await self._follow()
                raise ConnectionError("the watch stream ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; meanwhile the caches ask
                if self.synced:  # it was in sync on this stream: the next one starts afresh
                    backoff, lost_logged = BACKOFF_INITIAL, False
                self.synced = False
                if not lost_logged:
                    _log.warning(
                        "change feed lost; asking on every request until it is back",
                        extra={"feed": self.name, "error": type(exc).__name__},
                    )
                    lost_logged = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)


class LocalFollower(FeedFollower):
    """A producer following its own :class:`~servicekit.changefeed.ChangeFeed` in-process: every
    replica hears every replica's commits (on PostgreSQL through the feed's LISTEN connection)."""

    def __init__(self, feed: ChangeFeed, *, stale_after: float = STALE_AFTER) -> None:
        super().__init__(f"local:{feed.table_name}", stale_after=stale_after)
        self._feed = feed

    async def _follow(self) -> None:
        item: FeedEvent
        async for item in self._feed.watch(self.version):
            self.apply(item.kind, item.version, item.topic, item.key)
        if self._feed.draining:  # the process is stopping: nothing to resume, nothing to report
            self.synced = False
            await asyncio.Event().wait()  # until close() cancels it


class KeptEntries(Generic[K, V]):
    """What a cache of pushed state keeps, under the rules every such cache follows.

    - :meth:`get` answers only while ``live()`` (the follower that invalidates it is live);
    - :meth:`through` asks on a miss and keeps the answer only if it was asked while live, is
      still live, and no invalidation (:attr:`generation`) came while it was asked, so an answer
      from before a change is never kept after that change's invalidation;
    - bounded (LRU, ``max_entries``; 0 keeps nothing), with an index from ``group_of(key, value)``
      (a workspace, a key id) to its entries, for :meth:`drop_group`.
    """

    def __init__(
        self,
        live: Callable[[], bool],
        group_of: Callable[[K, V], str],
        *,
        max_entries: int,
    ) -> None:
        self._live, self._group_of, self._max = live, group_of, max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._groups: dict[str, set[K]] = {}
        self.generation = 0  # bumped by every invalidation
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def live(self) -> bool:
        """Whether the follower that invalidates these entries is live now."""
        return self._live()

    def get(self, key: K) -> V | None:
        """The kept value while live (and the entry is used again); else None."""
        if not self._live():
            return None
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return value

    def peek(self, key: K) -> V | None:
        """The kept value, whether or not live, without using the entry (callers check live)."""
        return self._entries.get(key)

    async def through(self, key: K, ask: Callable[[], Awaitable[A]]) -> V | A:
        """The kept value, or ``ask()``'s (a value, or None: nothing to keep), kept under the
        rules above."""
        live = self._live()
        if live:
            found = self.get(key)
            if found is not None:
                return found
        self.misses += 1
        generation = self.generation
        value = await ask()
        if value is not None and live and self.generation == generation and self._live():
            self.put(key, cast(V, value))
        return value

    def put(self, key: K, value: V) -> None:
        if self._max <= 0:
            return
        previous = self._entries.get(key)
        if previous is not None:  # replaced: its group may differ, so its index entry goes
            self._unindex(key, previous)
        self._entries[key] = value
        self._entries.move_to_end(key)
        self._groups.setdefault(self._group_of(key, value), set()).add(key)
        while len(self._entries) > self._max:
            oldest, evicted = self._entries.popitem(last=False)
            self._unindex(oldest, evicted)

    def refresh(self, key: K, value: V) -> None:
        """Replace a kept value with a newer reading of the same thing (not an invalidation:
        nothing the value decides on may differ), if it is still kept."""
        if key in self._entries and self._group_of(key, value) == self._group_of(
            key, self._entries[key]
        ):
            self._entries[key] = value

    def _unindex(self, key: K, value: V) -> None:
        group = self._group_of(key, value)
        members = self._groups.get(group)
        if members is not None:
            members.discard(key)
            if not members:
                del self._groups[group]

    def drop(self, key: K) -> None:
        """An invalidation of one entry."""
        self.generation += 1
        value = self._entries.pop(key, None)
        if value is not None:
            self._unindex(key, value)

    def drop_group(self, group: str) -> None:
        """An invalidation of every entry of ``group``."""
        self.generation += 1
        for key in self._groups.pop(group, set()):
            self._entries.pop(key, None)

    def drop_where(self, gone: Callable[[V], bool]) -> None:
        """An invalidation of every entry whose value ``gone`` matches (a scan)."""
        self.generation += 1
        for key, value in [(k, v) for k, v in self._entries.items() if gone(v)]:
            del self._entries[key]
            self._unindex(key, value)

    def clear(self) -> None:
        """An invalidation of everything (a Reset, a topic the cache does not know)."""
        self.generation += 1
        self._entries.clear()
        self._groups.clear()
