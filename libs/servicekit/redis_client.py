"""Redis clients that fail fast.

Redis is an accelerator in Railguard, never a dependency a request waits on (the edge's rate
limits and key-cache invalidations, the keys service's invalidation fan-out): a client gives up
quickly when Redis does not answer, and the caller falls back. ``redis.asyncio`` is imported only
when a client is made, so a deployment without Redis never loads it (about 21 MB resident).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["fail_fast_redis"]


def fail_fast_redis(url: str, *, connect_timeout: float = 1.0, timeout: float = 1.0) -> Redis:
    """A client for commands: ``connect_timeout`` and ``timeout`` (seconds) bound each connection
    attempt and each reply, idle pooled connections are pinged before use (every 5 s), and a
    command that meets a connection error or a timeout is retried once, at once, on a fresh
    connection (so none fails on a connection that died while Redis was away)."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=5,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
