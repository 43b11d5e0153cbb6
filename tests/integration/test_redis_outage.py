"""Redis down and back, on a Redis of the test's own: nothing fails, fallbacks say so, fan-out resumes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from edge_service.ratelimit import Limit, RedisLimiter
from edge_service.redis_fallback import FallbackLimiter, RedisHealth, redis_clients
from keys_service.adapters.invalidation import CHANNEL, RedisInvalidationPublisher
from keys_service.domain import KeyEnvironment, PepperRing, ScopeSet, issue_key
from keys_service.usecases import KeyEvent
from servicekit.metrics import Metrics
from testkit.own_servers import OwnRedis

if shutil.which("redis-server") is None:
    # required in CI, like the fault suite's own servers: never a silent skip there
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("CI=true: the Redis outage tests need redis-server on PATH")
    pytest.skip("no redis-server", allow_module_level=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _restart_on_same_port(server: OwnRedis) -> None:
    server.stop()
    server.start()


async def test_the_limiter_falls_back_while_redis_is_down_and_returns_after(
    own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    commands, pubsub, errors = redis_clients(own_redis.url)
    metrics = Metrics("edge")
    health = RedisHealth(metrics, retry_interval=0.1)
    limiter = FallbackLimiter(RedisLimiter(commands), health, errors)
    limit = Limit("t", 1000, 60.0)
    try:
        assert (await limiter.hit("k", limit)).allowed and health.up
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="edge.redis"):
            # 50 requests during the outage: all answered, by the per-process limiter
            decisions = [await limiter.hit("k", limit) for _ in range(50)]
            assert all(d.allowed for d in decisions)
            assert not health.up
            assert metrics.registry.get_sample_value("railguard_edge_redis_degraded") == 1
            own_redis.start()
            await asyncio.sleep(0.15)
            # the first request after the return goes to Redis, on a fresh connection, and works
            decision = await limiter.hit("k", limit)
            assert decision.allowed and health.up
        assert metrics.registry.get_sample_value("railguard_edge_redis_degraded") == 0
        lines = [r.getMessage() for r in caplog.records if r.name == "edge.redis"]
        assert len(lines) == 2, lines  # one per transition, not one per request
        assert lines[0].startswith("redis unavailable") and lines[1].startswith("redis is back")
    finally:
        await commands.aclose()
        await pubsub.aclose()


async def test_commands_survive_a_stale_pooled_connection(own_redis: OwnRedis) -> None:
    commands, pubsub, _ = redis_clients(own_redis.url)
    try:
        await commands.set("rg:i11:probe", "1")
        _restart_on_same_port(own_redis)  # the pooled connection is now dead
        assert await commands.ping()  # retried once on a fresh connection: no error
    finally:
        await commands.aclose()
        await pubsub.aclose()


def _key() -> object:
    ring = PepperRing({1: b"p" * 32}, current=1)
    key, _ = issue_key(
        key_id="k1",
        workspace_id="w1",
        name="n",
        environment=KeyEnvironment.LIVE,
        scopes=ScopeSet(["keys:read"]),
        creator_rights=ScopeSet(["keys:read"]),
        created_by="u",
        now=datetime(2026, 3, 1, tzinfo=UTC),
        ring=ring,
    )
    return key


async def _next_message(pubsub: object, seconds: float) -> dict[str, object] | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)  # type: ignore[attr-defined]
        if message is not None:
            return dict(message)
    return None


async def test_a_revocation_during_the_outage_is_fanned_out_when_redis_returns(
    own_redis: OwnRedis,
) -> None:
    import redis.asyncio as redis

    publisher = RedisInvalidationPublisher.from_url(own_redis.url)
    listener = redis.from_url(own_redis.url)
    try:
        await publisher.key_changed(_key(), KeyEvent.UPDATED)  # a live pooled connection
        own_redis.stop()
        await publisher.key_changed(_key(), KeyEvent.REVOKED)  # never raises: it is committed
        assert publisher.pending == 1
        own_redis.start()
        pubsub = listener.pubsub()
        await pubsub.subscribe(CHANNEL)
        message = await _next_message(pubsub, 3.0)
        assert message is not None, "the revocation made while Redis was down was lost"
        assert json.loads(message["data"])["event"] == "revoked"  # type: ignore[arg-type]
        assert publisher.pending == 0
        await pubsub.aclose()
    finally:
        await publisher.close()
        await listener.aclose()


async def test_the_first_revocation_after_a_restart_is_published(own_redis: OwnRedis) -> None:
    import redis.asyncio as redis

    publisher = RedisInvalidationPublisher.from_url(own_redis.url)
    listener = redis.from_url(own_redis.url)
    try:
        await publisher.key_changed(_key(), KeyEvent.UPDATED)
        _restart_on_same_port(own_redis)  # the publisher's pooled connection died
        pubsub = listener.pubsub()
        await pubsub.subscribe(CHANNEL)
        await publisher.key_changed(_key(), KeyEvent.REVOKED)
        message = await _next_message(pubsub, 2.0)
        assert message is not None
        assert json.loads(message["data"])["event"] == "revoked"  # type: ignore[arg-type]
        await pubsub.aclose()
    finally:
        await publisher.close()
        await listener.aclose()
