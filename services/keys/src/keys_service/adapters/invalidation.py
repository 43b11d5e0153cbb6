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

import json
import logging
from typing import TYPE_CHECKING, Final

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
    """Publishes to Redis; a failure is logged loudly, never turned into a failed mutation."""

    def __init__(self, client: Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisInvalidationPublisher:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0))

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.publish(CHANNEL, invalidation_message(key, event))
        except (RedisError, OSError):
            # The change is committed; edges that lost the message fall back to their cache TTL.
            _log.error(
                "key invalidation not published",
                extra={"key_id": key.id, "event": event.value},
                exc_info=True,
            )

    async def close(self) -> None:
        await self._redis.aclose()


class NullPublisher:
    """No Redis: nothing to tell."""

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None:
        return None

    async def close(self) -> None:
        return None
