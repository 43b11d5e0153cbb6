"""Rate limits at the edge: 429 with the IETF headers, shared by every replica through Redis.

Edge 1 trusts 127.0.0.1 as a proxy, so a test can speak for a client address of its own choice
(X-Forwarded-For): each test below takes its own addresses, so none sees another's counters,
with or without Redis.
"""

from __future__ import annotations

import itertools
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
        services=("auth", "workspaces", "keys"),
        env=env,
        edges=2,
        edge_envs=({}, {"RAILGUARD_EDGE_TRUSTED_PROXIES": "127.0.0.1/32"}),
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


_NETS = itertools.count(1)


def _client_v4() -> str:
    """A documentation address (TEST-NET-2) no other test uses."""
    n = next(_NETS)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def _client_v6_net() -> str:
    """A fresh /64 of the documentation prefix, as ``2001:db8:<n>:<n>:``."""
    n = next(_NETS)
    return f"2001:db8:{n:x}:{n:x}:"


def _as(ip: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, **headers}


def _random_key() -> str:
    """A well-formed key (its checksum is public) that no workspace holds."""
    from keys_service.domain.key_format import KeyEnvironment, generate_key

    return generate_key(KeyEnvironment.LIVE).reveal()


def _assert_limit_headers(headers: object, policy: str) -> None:
    assert headers["ratelimit-policy"].startswith(f'"{policy}"'), headers  # type: ignore[index]
    assert headers["ratelimit"].startswith(f'"{policy}";r='), headers  # type: ignore[index]


async def test_every_answer_of_a_public_route_carries_the_limit_headers(
    edges: tuple[Api, Api],
) -> None:
    _, proxied = edges
    ip = _client_v4()
    s, body, headers = await proxied.call(
        "POST", "/v1/users", json={"email": "not-an-email", "password": "p" * 12}, headers=_as(ip)
    )
    assert s == 400, body
    _assert_limit_headers(headers, "auth-p1")
    assert ";r=2;" in headers["ratelimit"]


async def test_the_per_ip_limit_is_taken_before_the_body_is_parsed(
    edges: tuple[Api, Api],
) -> None:
    _, proxied = edges
    ip = _client_v4()
    deep = b"[" * 10_000 + b"]" * 10_000  # would be a RecursionError if it were ever parsed
    statuses = []
    for _ in range(4):
        s, body, headers = await proxied.call(
            "POST",
            "/v1/users",
            content=deep,
            headers=_as(ip, **{"Content-Type": "application/json"}),
        )
        statuses.append((s, body["code"]))
        _assert_limit_headers(headers, "auth-p1")
    assert statuses == [(400, "MALFORMED_JSON")] * 3 + [(429, "RATE_LIMITED")]


async def test_whoami_and_failed_key_authentications_are_limited_per_ip(
    edges: tuple[Api, Api],
) -> None:
    _, proxied = edges
    ip = _client_v4()
    answers = []
    for _ in range(4):  # failed-auth: 30/min × 0.1 = 3 a minute per client IP
        s, body, headers = await proxied.call(
            "GET", "/v1/whoami", headers=_as(ip, **{"X-API-Key": _random_key()})
        )
        answers.append((s, body["code"]))
        _assert_limit_headers(headers, "failed-auth")
    assert [s for s, _ in answers] == [401, 401, 401, 429], answers
    assert int(headers["retry-after"]) >= 1
    # the IP is now refused on every authenticated route, before any lookup
    s, body, headers = await proxied.call(
        "GET", "/v1/workspaces", headers=_as(ip, **{"X-API-Key": _random_key()})
    )
    assert (s, body["code"]) == (429, "RATE_LIMITED")
    _assert_limit_headers(headers, "failed-auth")
    # another client is unaffected
    s, _, _ = await proxied.call("GET", "/v1/whoami", headers=_as(_client_v4()))
    assert s == 401


async def test_failed_token_authentications_count_against_the_ip(edges: tuple[Api, Api]) -> None:
    _, proxied = edges
    ip = _client_v4()
    statuses = [
        (await proxied.call("GET", "/v1/workspaces", "not.a.token", headers=_as(ip)))[0]
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


async def test_ipv6_clients_are_limited_per_64(edges: tuple[Api, Api]) -> None:
    _, proxied = edges
    net, other = _client_v6_net(), _client_v6_net()
    body = {"email": "not-an-email", "password": "p" * 12}
    statuses = [
        (await proxied.call("POST", "/v1/users", json=body, headers=_as(f"{net}:{host:x}")))[0]
        for host in range(1, 5)  # four addresses of one /64
    ]
    assert statuses == [400, 400, 400, 429]
    s, _, _ = await proxied.call("POST", "/v1/users", json=body, headers=_as(f"{other}:1"))
    assert s == 400, "another /64 has its own budget"
