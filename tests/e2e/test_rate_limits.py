"""Rate limits at the edge: 429 with the IETF headers, shared by every replica through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from devstack import Stack, StackPorts
from testkit import redis_url

from .conftest import Api, api_for, running_stack

# auth class: 30/min on the free plan × 0.1 = 3 requests a minute per client IP
SCALE = "0.1"


def _own_redis_db() -> str:
    """This module's counters live in their own Redis database, away from other stacks'."""
    base = redis_url()
    return base.rsplit("/", 1)[0] + "/14" if base else ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"RAILGUARD_EDGE_RATE_LIMIT_SCALE": SCALE, "RAILGUARD_LOG_LEVEL": "WARNING"}
    if redis_url():
        env["RAILGUARD_REDIS_URL"] = _own_redis_db()
    s = Stack(
        tmp_path_factory.mktemp("rl-stack"),
        ports=StackPorts.free(),
        services=("auth", "workspaces"),
        env=env,
        edges=2,
    )
    with running_stack(s) as running:
        yield running


@pytest.fixture
async def edges(stack: Stack) -> AsyncIterator[tuple[Api, Api]]:
    if redis_url():  # every test starts with fresh counters
        import redis.asyncio as redis

        client = redis.from_url(_own_redis_db())
        async for key in client.scan_iter("railguard:rl:*"):
            await client.delete(key)
        await client.aclose()
    async with api_for(stack) as a, api_for(stack, stack.edge_ports[1]) as b:
        yield a, b


async def _login(api: Api) -> tuple[int, dict[str, object], dict[str, str]]:
    """A request in the AUTH class that the auth service itself refuses (400), so that only the
    edge's limiter can turn it into a 429 (the auth service has its own login throttle)."""
    s, body, headers = await api.call(
        "POST", "/v1/users", json={"email": "not-an-email", "password": "p" * 12}
    )
    return s, body, dict(headers)


async def test_public_route_is_limited_per_ip_with_headers(edges: tuple[Api, Api]) -> None:
    a, _ = edges
    first = [await _login(a) for _ in range(3)]
    assert [s for s, _, _ in first] == [400, 400, 400]
    s, body, headers = await _login(a)
    assert (s, body["code"]) == (429, "RATE_LIMITED")
    assert int(headers["retry-after"]) >= 1
    assert headers["ratelimit-policy"].startswith('"auth-')
    assert ";r=0;" in headers["ratelimit"]


@pytest.mark.redis
async def test_limits_are_shared_across_edge_replicas(stack: Stack, edges: tuple[Api, Api]) -> None:
    if not redis_url():
        pytest.skip("RAILGUARD_TEST_REDIS_URL not set")
    a, b = edges
    statuses = [(await _login(edge))[0] for edge in (a, b, a, b)]
    assert statuses == [400, 400, 400, 429], "the second replica sees the first one's count"
