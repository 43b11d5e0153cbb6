"""Revocation fan-out: every change that can make a cached verification stale is published.

Channel ``railguard:keys:invalidate`` (Redis pub/sub), one JSON message per change, published
*after* the change is committed::

    {"v": 1, "key_id": "…", "workspace_id": "…", "event": "revoked", "at": "2026-…Z"}

``event`` is one of updated, revoked, rotated, deleted, undeleted. A subscriber drops every cached
verification of ``key_id`` on any message (the payload never carries a secret or a hash). Without
Redis (``RAILGUARD_REDIS_URL`` unset) the publisher does nothing: a single-process deployment has
no remote caches to invalidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Final

from servicekit.redis_client import fail_fast_redis

if TYPE_CHECKING:  # redis.asyncio costs ~21 MB resident; only a configured Redis loads it
    from redis.asyncio import Redis

from keys_service.domain import ApiKey
from keys_service.usecases import KeyEvent

__all__ = ["CHANNEL", "NullPublisher", "RedisInvalidationPublisher", "invalidation_message"]

CHANNEL: Final = "railguard:keys:invalidate"
_log = logging.getLogger("keys_service.invalidation")


def invalidation_message(key: ApiKey, event: KeyEvent) -> str:
    at = (key.updated_at or key.created_at).isoformat().replace("+00:00", "Z")
    payload = {
        "v": 1,
        "key_id": key.id,
        "workspace_id": key.workspace_id,
        "event": event.value,
        "at": at,
    }
    return json.dumps(payload, separators=(",", ":"))


class RedisInvalidationPublisher:
    """Publishes to Redis; a failure never fails the committed mutation, and is not forgotten.

    A message that cannot be published (Redis down, or a pooled connection that died while
    Redis restarted) waits in a bounded queue that a background task retries every
    ``retry_interval`` seconds, in order, until Redis answers: the first revocation after Redis
    returns is fanned out, not dropped. The client pings idle connections before use and retries
    a command once on a fresh connection. Loss and recovery are logged once each, not per message.
    Edges that were deaf meanwhile drop their caches when they resubscribe, and their cache TTL
    bounds a revoked key's life to one second regardless.
    """

    def __init__(
        self, client: Redis, *, retry_interval: float = 0.25, max_pending: int = 10_000
    ) -> None:
        self._redis = client
        self._retry_interval = retry_interval
        self._pending: deque[str] = deque(maxlen=max_pending)
        self._lock = asyncio.Lock()
        self._retrying: asyncio.Task[None] | None = None
        self._down = False

    @classmethod
    def from_url(cls, url: str) -> RedisInvalidationPublisher:
        return cls(fail_fast_redis(url, connect_timeout=1.0, timeout=1.0))

    @property
    def pending(self) -> int:
        """Messages not yet published."""
        return len(self._pending)

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None:
        self._pending.append(invalidation_message(key, event))
        if self._down:
            return  # the retry task publishes it, in order, when Redis answers
        await self._flush()

    async def _flush(self) -> bool:
        """Publish what is queued, oldest first; False (and a retry scheduled) on failure."""
        from redis.exceptions import RedisError

        async with self._lock:
            while self._pending:
                try:
                    await self._redis.publish(CHANNEL, self._pending[0])
                except (RedisError, OSError) as exc:
                    if not self._down:
                        self._down = True
                        _log.error(
                            "key invalidations not published; queued and retrying",
                            extra={"pending": len(self._pending), "error": type(exc).__name__},
                        )
                    if self._retrying is None or self._retrying.done():
                        self._retrying = asyncio.create_task(self._retry(), name="invalidations")
                    return False
                self._pending.popleft()
            if self._down:
                self._down = False
                _log.warning("key invalidations published again")
            return True

    async def _retry(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            if await self._flush():
                return

    async def close(self) -> None:
        task, self._retrying = self._retrying, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pending:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), 1.0)
        await self._redis.aclose()


class NullPublisher:
    """No Redis: nothing to tell."""

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None:
        return None

    async def close(self) -> None:
        return None
