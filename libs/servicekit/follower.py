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

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from servicekit.changefeed import ChangeFeed, FeedEvent

__all__ = [
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "STALE_AFTER",
    "FeedFollower",
    "Listener",
    "LocalFollower",
]

_log = logging.getLogger("servicekit.follower")

STALE_AFTER = 1.0
BACKOFF_INITIAL, BACKOFF_MAX = 0.1, 1.0

Listener = Callable[[str, str], None]
"""Told of every change: (topic, key)."""


class FeedFollower:
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

    async def _follow(self) -> None:
        """Open one stream from :attr:`version` and :meth:`apply` its messages until it ends."""
        raise NotImplementedError

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

    def __init__(
        self,
        feed: ChangeFeed,
        *,
        stale_after: float = STALE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(f"local:{feed.table_name}", stale_after=stale_after, clock=clock)
        self._feed = feed

    async def _follow(self) -> None:
        item: FeedEvent
        async for item in self._feed.watch(self.version):
            self.apply(item.kind, item.version, item.topic, item.key)
        if self._feed.draining:  # the process is stopping: nothing to resume, nothing to report
            self.synced = False
            await asyncio.Event().wait()  # until close() cancels it
