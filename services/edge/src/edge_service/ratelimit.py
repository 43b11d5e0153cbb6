"""Rate limits per principal × rate-limit class × plan, by GCRA.

One atomic Redis script when Redis is configured (shared by every edge replica, timed by the
Redis clock so replicas with skewed clocks agree); an in-process limiter otherwise.
Responses carry the IETF ``RateLimit-Policy`` / ``RateLimit`` headers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from railguard.access.v1 import access_pb2

__all__ = ["Decision", "Limit", "LimitTable", "MemoryLimiter", "RedisLimiter"]

_CLASS_NAMES: dict[int, str] = {
    access_pb2.RATE_LIMIT_CLASS_UNSPECIFIED: "default",
    access_pb2.RATE_LIMIT_CLASS_READ: "read",
    access_pb2.RATE_LIMIT_CLASS_WRITE: "write",
    access_pb2.RATE_LIMIT_CLASS_AUTH: "auth",
    access_pb2.RATE_LIMIT_CLASS_WEBHOOK: "webhook",
}
# requests per minute on the free plan
_BASE_PER_MINUTE = {"default": 300, "read": 600, "write": 120, "auth": 30, "webhook": 300}
# failed authentications per client IP (or IPv6 /64) per minute, before the IP is refused outright
_FAILED_AUTH_PER_MINUTE = 30
# plan values match railguard.workspaces.v1.Plan
_PLAN_FACTOR = {0: 1, 1: 1, 2: 5, 3: 20}


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    quota: int
    window: float  # seconds

    @property
    def interval(self) -> float:
        return self.window / self.quota


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: Limit
    remaining: int
    reset: float
    retry_after: float

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Policy": f'"{self.limit.name}";q={self.limit.quota};w={int(self.limit.window)}',
            "RateLimit": f'"{self.limit.name}";r={self.remaining};t={max(0, math.ceil(self.reset))}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class LimitTable:
    """The quota for a class on a plan; ``scale`` multiplies every quota (set by configuration)."""

    def __init__(self, overrides: Mapping[str, int] | None = None, scale: float = 1.0) -> None:
        self.base = {**_BASE_PER_MINUTE, **(overrides or {})}
        self.scale = scale

    def limit(self, rate_class: int, plan: int) -> Limit:
        name = _CLASS_NAMES.get(rate_class, "default")
        quota = max(1, int(self.base[name] * _PLAN_FACTOR.get(plan, 1) * self.scale))
        return Limit(f"{name}-p{plan or 1}", quota, 60.0)

    def failed_auth(self) -> Limit:
        """Failed authentications (bad, unknown or missing credentials) one client IP may make."""
        return Limit("failed-auth", max(1, int(_FAILED_AUTH_PER_MINUTE * self.scale)), 60.0)

    def all_for_plan(self, plan: int) -> dict[str, Limit]:
        return {name: self.limit(rate_class, plan) for rate_class, name in _CLASS_NAMES.items()}


class Limiter(Protocol):
    async def hit(self, key: str, limit: Limit) -> Decision: ...


def _decide(tat: float, now: float, limit: Limit) -> tuple[Decision, float | None]:
    tat = max(tat, now)
    new_tat = tat + limit.interval
    allow_at = new_tat - limit.window
    if now < allow_at:
        return Decision(False, limit, 0, tat - now, allow_at - now), None
    remaining = int((limit.window - (new_tat - now)) / limit.interval + 1e-9)
    return Decision(True, limit, remaining, new_tat - now, 0.0), new_tat


class MemoryLimiter:
    """Per-process GCRA; correct for one replica (the embedded default)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def hit(self, key: str, limit: Limit) -> Decision:
        now = time.monotonic()
        decision, new_tat = _decide(self._tat.get(key, now), now, limit)
        if new_tat is not None:
            if len(self._tat) > 100_000:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            self._tat[key] = new_tat
        return decision


_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1)
return {1, 0, new_tat - now}
"""


class RedisLimiter:
    """GCRA in one atomic Redis script; every edge replica shares the same counters."""

    def __init__(self, client: Any, prefix: str = "railguard:rl:") -> None:
        self._client, self._prefix = client, prefix
        self._script = client.register_script(_GCRA)

    async def hit(self, key: str, limit: Limit) -> Decision:
        interval_ms, window_ms = limit.interval * 1000, limit.window * 1000
        allowed, retry_ms, reset_ms = await self._script(
            keys=[self._prefix + key], args=[interval_ms, window_ms]
        )
        reset = float(reset_ms) / 1000
        if not int(allowed):
            return Decision(False, limit, 0, reset, float(retry_ms) / 1000)
        remaining = int((window_ms - float(reset_ms)) / interval_ms + 1e-9)
        return Decision(True, limit, remaining, reset, 0.0)
