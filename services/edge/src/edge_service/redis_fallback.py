"""Redis is an accelerator at the edge, never a single point of failure.

While Redis is unreachable the edge keeps answering:

- rate limits fall back to this process's own GCRA (:class:`FallbackLimiter`), so each replica
  enforces the quota alone (N replicas admit up to N × the quota);
- API-key verifications are cached for at most the 0.5 s bound (the invalidation subscription is
  down, see ``api_keys``), so a revocation still takes effect within a second;
- ``/readyz`` stays 200 and lists ``"redis"`` under ``degraded``.

:class:`RedisHealth` is the one place that notices: a log line and the
``railguard_edge_redis_degraded`` gauge on each transition (down → up, up → down), never one per
request. While down, Redis is tried again at most once per ``retry_interval`` (by a request, the
subscriber or readiness), so an outage costs no request a connection attempt beyond that.
After Redis returns, pooled connections are health-checked and a command that meets a dead one
is retried once on a fresh connection, so no request fails on a stale connection.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Gauge
from servicekit.metrics import Metrics
from servicekit.redis_client import fail_fast_redis

from edge_service.ratelimit import Decision, Limit, Limiter, MemoryLimiter

__all__ = ["FallbackLimiter", "RedisHealth", "redis_clients"]

_log = logging.getLogger("edge.redis")


class RedisHealth:
    """Up or down, as last seen; transitions are logged and exported, requests are not."""

    def __init__(self, metrics: Metrics | None = None, *, retry_interval: float = 1.0) -> None:
        self.up = True
        self.retry_interval = retry_interval
        self._next_try = 0.0
        self._gauge: Gauge | None = None
        if metrics is not None:
            self._gauge = Gauge(
                "railguard_edge_redis_degraded",
                "1 while Redis is unreachable and the edge runs on per-process fallbacks.",
                registry=metrics.registry,
            )
            self._gauge.set(0)

    def should_try(self) -> bool:
        """Whether to use Redis now: always while up, once per retry interval while down."""
        if self.up:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_interval
        return True

    def failed(self, exc: BaseException, what: str) -> None:
        self._next_try = time.monotonic() + self.retry_interval
        if not self.up:
            return
        self.up = False
        if self._gauge is not None:
            self._gauge.set(1)
        _log.warning(
            "redis unavailable: per-process rate limits, API-key cache bounded to 0.5 s",
            extra={"during": what, "error": type(exc).__name__},
        )

    def succeeded(self) -> None:
        if self.up:
            return
        self.up = True
        if self._gauge is not None:
            self._gauge.set(0)
        _log.warning("redis is back: shared rate limits and key invalidation resume")


class FallbackLimiter:
    """The shared (Redis) limiter while Redis answers; this process's own limiter otherwise."""

    def __init__(
        self,
        shared: Limiter,
        health: RedisHealth,
        errors: tuple[type[BaseException], ...],
        local: Limiter | None = None,
    ) -> None:
        self.shared, self.health, self.errors = shared, health, errors
        self.local = local or MemoryLimiter()

    async def hit(self, key: str, limit: Limit) -> Decision:
        if self.health.should_try():
            try:
                decision = await self.shared.hit(key, limit)
            except self.errors as exc:
                self.health.failed(exc, "rate limit")
            else:
                self.health.succeeded()
                return decision
        return await self.local.hit(key, limit)


def redis_clients(url: str) -> tuple[Any, Any, tuple[type[BaseException], ...]]:
    """(commands client, pub/sub client, the errors that mean "Redis is unreachable").

    Commands: short timeouts, idle connections pinged before use, one retry on a fresh connection
    after a connection error. Pub/sub: its own client with no silent retry, so a lost subscription
    always surfaces to the subscriber (which then drops its cache: it may have missed messages).
    """
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError

    commands = fail_fast_redis(url, connect_timeout=0.5, timeout=1.0)
    pubsub = redis.from_url(
        url, socket_connect_timeout=0.5, health_check_interval=5, retry=Retry(NoBackoff(), 0)
    )
    return commands, pubsub, (RedisError, OSError)
