"""GCRA admits exactly the quota per window, then says when to retry."""

from __future__ import annotations

import pytest
from edge_service.ratelimit import Limit, LimitTable, MemoryLimiter, RedisLimiter
from railguard.access.v1 import access_pb2
from testkit import redis_url


async def test_memory_limiter_admits_quota_then_refuses() -> None:
    limiter, limit = MemoryLimiter(), Limit("t", 5, 60.0)
    decisions = [await limiter.hit("k", limit) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert 0 < refused.retry_after <= 12.0
    assert refused.headers()["Retry-After"] == str(int(refused.retry_after + 0.999))
    assert refused.headers()["RateLimit-Policy"] == '"t";q=5;w=60'


def test_plans_scale_the_quota() -> None:
    table = LimitTable()
    free = table.limit(access_pb2.RATE_LIMIT_CLASS_WRITE, 1)
    team = table.limit(access_pb2.RATE_LIMIT_CLASS_WRITE, 2)
    assert team.quota == 5 * free.quota


@pytest.mark.redis
async def test_redis_limiter_is_shared_and_atomic() -> None:
    import asyncio
    import secrets

    import redis.asyncio as redis

    url = redis_url()
    if not url:
        pytest.skip("RAILGUARD_TEST_REDIS_URL not set")
    client = redis.from_url(url)
    try:
        key, limit = f"test-{secrets.token_hex(4)}", Limit("t", 10, 60.0)
        # two "replicas" hammering one key concurrently: exactly the quota gets through
        a, b = RedisLimiter(client), RedisLimiter(client)
        decisions = await asyncio.gather(*[(a if i % 2 else b).hit(key, limit) for i in range(30)])
        assert sum(d.allowed for d in decisions) == 10
        await client.delete(f"railguard:rl:{key}")
    finally:
        await client.aclose()
