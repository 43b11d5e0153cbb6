"""VerifyApiKey without a database read: stored keys kept while the keys change feed is live.

Every mutation of an ``api_keys`` row records an ``api_key`` change (its id) in the same
transaction (``adapters.repository``: save, rehash), and every lifecycle change of a workspace
a ``workspace`` change (``record_workspace_change``). So a replica that follows its own change
feed (:class:`servicekit.follower.LocalFollower`) hears of every change that could alter a
verification, its own and every other replica's (on PostgreSQL through the feed's LISTEN
connection, in milliseconds). Last-used times, which verification does not decide on, are the
one column written without a change: a verification that records a use writes it into the kept
row too (:meth:`FollowedKeyCache.used`), so a kept key is recorded once a minute, as a read one is.

:class:`FollowedKeyCache` keeps what ``find_by_digests`` returned, by the digests of the
presented secret, under the edge's rules for pushed state (``edge_service.feeds``):

- used only while the follower is :attr:`~servicekit.follower.FeedFollower.live` (in sync and
  heard within 1 s); otherwise every verification reads the database, as without the cache;
- an ``api_key`` change drops that key, a ``workspace`` change every key of that workspace, a
  Reset or a topic it does not know everything; the replica that made a change drops the key
  at once after the commit (``KeysCore._publish``), before the feed tells it;
- a read is kept only if no invalidation arrived while it was made (a counter), so an answer from
  before a change is never kept after that change's invalidation;
- "no such key" is never kept (junk secrets cannot fill it), and it is bounded (LRU,
  ``RAILGUARD_KEYS_VERIFY_CACHE_ENTRIES``, 4 096 by default, about 4 KB of resident memory each; 0 turns it off).
  The edge keeps verifications itself (60 s while its feed is live), so this cache serves what
  the edges ask for again: a new edge worker, a key used through many edges.

What is kept is the stored row only: expiry, the rotation grace, revocation, the IP and origin
allowlists and the scope are checked on every call against it, and the workspace's status comes
from its own (≤ 1 s) cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime

from servicekit.changefeed import ChangeFeed
from servicekit.follower import KeptEntries, LocalFollower

from keys_service.adapters.repository import TOPIC_API_KEY, TOPIC_WORKSPACE
from keys_service.domain import ApiKey
from keys_service.ports import Digests, ReadEveryTime, StoredKeyCache

__all__ = ["DEFAULT_ENTRIES", "FollowedKeyCache", "followed_cache"]

DEFAULT_ENTRIES = 4096


class FollowedKeyCache:
    """A :class:`~keys_service.ports.StoredKeyCache` kept fresh by the change feed (see above)."""

    def __init__(self, live: Callable[[], bool], *, max_entries: int = DEFAULT_ENTRIES) -> None:
        self._kept: KeptEntries[Digests, ApiKey] = KeptEntries(
            live, lambda _digests, key: key.id, max_entries=max_entries
        )

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def hits(self) -> int:
        return self._kept.hits

    async def find(
        self, digests: Digests, read: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None:
        # "no such key" (None) is never kept: junk secrets cannot fill the cache
        return await self._kept.through(digests, read)

    def used(self, digests: Digests, when: datetime) -> None:
        """The key was used at ``when`` (recorded for the last-used flush): the kept row says so
        too, so the next minute of verifications does not record it again."""
        kept = self._kept.peek(digests)
        if kept is not None:
            self._kept.refresh(digests, dataclasses.replace(kept, last_used_at=when))

    def drop(self, key_id: str) -> None:
        """Forget ``key_id`` (it changed)."""
        self._kept.drop_group(key_id)

    def clear(self) -> None:
        """Forget everything (a feed Reset, an unknown topic)."""
        self._kept.clear()

    def on_change(self, topic: str, key: str) -> None:
        """A change heard from the keys service's own feed."""
        if topic == TOPIC_API_KEY:
            self.drop(key)
        elif topic == TOPIC_WORKSPACE:
            self._kept.drop_where(lambda stored: stored.workspace_id == key)
        else:
            self._kept.clear()  # a topic this cache does not know: fail safe


def followed_cache(
    feed: ChangeFeed, entries: int = DEFAULT_ENTRIES
) -> tuple[LocalFollower, StoredKeyCache]:
    """VerifyApiKey's cache of stored keys, fed by this replica's own change feed (which hears
    every replica's commits), and its follower, started; with ``entries`` 0 nothing is kept and
    the feed is not followed. The composition root closes the follower at shutdown."""
    follower = LocalFollower(feed)
    if entries <= 0:
        return follower, ReadEveryTime()
    cache = FollowedKeyCache(lambda: follower.live, max_entries=entries)
    follower.on_change.append(cache.on_change)
    follower.on_reset.append(cache.clear)
    follower.start()
    return follower, cache
