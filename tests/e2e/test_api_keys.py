"""API keys at the edge, black-box over HTTPS through two edge processes.

Edge 0 trusts no proxy (a forged X-Forwarded-For must be ignored); edge 1 trusts 127.0.0.1 as
a proxy, so a test can present an IPv6 client address through it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from devstack import Stack, StackPorts
from testkit import redis_url

from .conftest import E2E_SERVICES, Api, api_for, running_stack

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100", "RAILGUARD_LOG_LEVEL": "WARNING"}
    if redis_url():
        env["RAILGUARD_REDIS_URL"] = redis_url()
    s = Stack(
        tmp_path_factory.mktemp("keys-stack"),
        ports=StackPorts.free(),
        services=E2E_SERVICES,
        env=env,
        edges=2,
        edge_envs=({}, {"RAILGUARD_EDGE_TRUSTED_PROXIES": "127.0.0.1/32"}),
    )
    with running_stack(s) as running:
        yield running


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with api_for(stack) as a:
        yield a


@pytest.fixture
async def proxied(stack: Stack) -> AsyncIterator[Api]:
    async with api_for(stack, stack.edge_ports[1]) as a:
        yield a


async def _workspace(api: Api) -> tuple[str, str]:
    _, token, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", token, json={"displayName": "Keys"})
    assert s == 200, ws
    return ws["name"], token


async def _key(api: Api, token: str, ws: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    body = {
        "displayName": "ci",
        "environment": "ENVIRONMENT_LIVE",
        "scopes": ["workspaces:read", "keys:read"],
        **fields,
    }
    s, created, _ = await api.call("POST", f"/v1/{ws}/apiKeys", token, json=body)
    assert s == 200, created
    assert created["key"].startswith("rg_live_") or created["key"].startswith("rg_test_")
    return created["key"], created["apiKey"]


def _key_headers(key: str, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key, **extra}


async def test_key_authenticates_by_bearer_and_header(api: Api) -> None:
    ws, token = await _workspace(api)
    key, meta = await _key(api, token, ws)
    s, body, _ = await api.call("GET", f"/v1/{ws}", key)  # Authorization: Bearer rg_...
    assert s == 200 and body["name"] == ws
    s, body, _ = await api.call("GET", f"/v1/{ws}", headers=_key_headers(key))
    assert s == 200
    # the key is never shown again
    s, got, _ = await api.call("GET", f"/v1/{meta['name']}", token)
    assert s == 200 and key not in str(got) and key[8:20] not in str(got)


async def test_scope_role_and_rpc_rules(api: Api) -> None:
    ws, token = await _workspace(api)
    key, _ = await _key(api, token, ws, scopes=["workspaces:read"])
    s, body, _ = await api.call("GET", f"/v1/{ws}/apiKeys", key)
    assert (s, body["code"]) == (403, "SCOPE_NOT_GRANTED")
    s, body, _ = await api.call("POST", "/v1/workspaces", key, json={"displayName": "x"})
    assert (s, body["code"]) == (403, "API_KEY_NOT_ALLOWED")
    other_ws, _ = await _workspace(api)
    s, body, _ = await api.call("GET", f"/v1/{other_ws}", key)
    assert (s, body["code"]) == (404, "NOT_FOUND"), "a key is bound to its workspace"


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("rg_live_short", "KEY_LENGTH_INVALID"),
        ("rg_live_" + "A" * 49, "KEY_CHECKSUM_MISMATCH"),
        ("rg_prod_" + "A" * 49, "KEY_ENVIRONMENT_INVALID"),
    ],
)
async def test_malformed_keys_are_401(api: Api, key: str, code: str) -> None:
    ws, _ = await _workspace(api)
    s, body, _ = await api.call("GET", f"/v1/{ws}", headers=_key_headers(key))
    assert (s, body["code"]) == (401, code)


async def test_typo_in_a_real_key_is_caught_by_the_checksum(api: Api) -> None:
    ws, token = await _workspace(api)
    key, _ = await _key(api, token, ws)
    typo = key[:-8] + ("B" if key[-8] != "B" else "C") + key[-7:]
    s, body, _ = await api.call("GET", f"/v1/{ws}", headers=_key_headers(typo))
    assert (s, body["code"]) == (401, "KEY_CHECKSUM_MISMATCH")


async def test_revoked_and_expired_keys_are_401(api: Api) -> None:
    ws, token = await _workspace(api)
    key, meta = await _key(api, token, ws)
    s, _, _ = await api.call("POST", f"/v1/{meta['name']}:revoke", token, json={})
    assert s == 200
    s, body, _ = await api.call("GET", f"/v1/{ws}", key)
    assert (s, body["code"]) == (401, "KEY_REVOKED")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    key, _ = await _key(api, token, ws, expireTime=soon)
    s, _, _ = await api.call("GET", f"/v1/{ws}", key)
    assert s == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s, body, _ = await api.call("GET", f"/v1/{ws}", key)
        if s != 200:
            break
        await asyncio.sleep(0.2)
    assert (s, body["code"]) == (401, "KEY_EXPIRED")


async def test_ip_allowlist_ignores_spoofed_forwarded_for(api: Api) -> None:
    ws, token = await _workspace(api)
    key, _ = await _key(api, token, ws, allowedCidrs=["10.0.0.0/8"])
    s, body, _ = await api.call("GET", f"/v1/{ws}", key, headers={"X-Forwarded-For": "10.1.2.3"})
    assert (s, body["code"]) == (403, "IP_NOT_ALLOWED"), "edge 0 trusts no proxy"
    key, _ = await _key(api, token, ws, allowedCidrs=["127.0.0.0/8", "::1/128"])
    s, _, _ = await api.call("GET", f"/v1/{ws}", key)
    assert s == 200


async def test_ipv6_cidr_through_a_trusted_proxy(api: Api, proxied: Api) -> None:
    ws, token = await _workspace(api)
    key, _ = await _key(api, token, ws, allowedCidrs=["2001:db8:abcd::/48"])
    s, _, _ = await proxied.call(
        "GET", f"/v1/{ws}", key, headers={"X-Forwarded-For": "2001:db8:abcd:12::5"}
    )
    assert s == 200
    s, body, _ = await proxied.call(
        "GET", f"/v1/{ws}", key, headers={"X-Forwarded-For": "2001:db8:ffff::5"}
    )
    assert (s, body["code"]) == (403, "IP_NOT_ALLOWED")
    # a client-supplied first hop before the real one does not help: the proxy's hop is read
    s, body, _ = await proxied.call(
        "GET", f"/v1/{ws}", key, headers={"X-Forwarded-For": "2001:db8:abcd::1, 198.51.100.4"}
    )
    assert (s, body["code"]) == (403, "IP_NOT_ALLOWED")


async def test_cors_preflight_and_origin_allowlist(api: Api) -> None:
    ws, token = await _workspace(api)
    key, _ = await _key(api, token, ws, allowedOrigins=["https://app.example.com"])
    await asyncio.sleep(0.6)  # the edge's set of allowed origins is up to 0.5 s old
    s, _, headers = await api.call(
        "OPTIONS",
        f"/v1/{ws}",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert s == 204
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-api-key" in headers["access-control-allow-headers"].lower()
    s, _, headers = await api.call(
        "GET", f"/v1/{ws}", headers=_key_headers(key, Origin="https://app.example.com")
    )
    assert s == 200 and headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-credentials" not in headers
    s, body, headers = await api.call(
        "GET", f"/v1/{ws}", headers=_key_headers(key, Origin="https://evil.example")
    )
    assert (s, body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "access-control-allow-origin" not in headers


async def test_server_key_refuses_browser_origins(api: Api) -> None:
    ws, token = await _workspace(api)
    key, _ = await _key(api, token, ws)
    s, body, _ = await api.call(
        "GET", f"/v1/{ws}", headers=_key_headers(key, Origin="https://app.example.com")
    )
    assert (s, body["code"]) == (403, "ORIGIN_NOT_ALLOWED")


async def test_rotation_grace_and_immediate(api: Api) -> None:
    ws, token = await _workspace(api)
    old, meta = await _key(api, token, ws)
    s, rotated, _ = await api.call(
        "POST", f"/v1/{meta['name']}:rotate", token, json={"gracePeriod": "60s"}
    )
    assert s == 200, rotated
    new = rotated["key"]
    assert new != old
    for presented in (old, new):
        s, _, _ = await api.call("GET", f"/v1/{ws}", presented)
        assert s == 200
    s, rotated, _ = await api.call(
        "POST", f"/v1/{meta['name']}:rotate", token, json={"gracePeriod": "0s"}
    )
    newest = rotated["key"]
    await _refused_within_a_second(api, f"/v1/{ws}", new)
    s, _, _ = await api.call("GET", f"/v1/{ws}", newest)
    assert s == 200


async def _refused_within_a_second(edge: Api, path: str, key: str) -> None:
    """Poll until the key is refused; fail if it still works one second after the change."""
    changed_at = time.monotonic()
    while True:
        s, _, _ = await edge.call("GET", path, key)
        if s == 401:
            return
        assert time.monotonic() - changed_at < 1.0, "a retired secret still worked after 1 s"
        await asyncio.sleep(0.05)


async def test_revocation_reaches_every_edge_within_a_second(api: Api, proxied: Api) -> None:
    ws, token = await _workspace(api)
    key, meta = await _key(api, token, ws)
    for edge in (api, proxied):  # warm both caches
        s, _, _ = await edge.call("GET", f"/v1/{ws}", key)
        assert s == 200
    s, _, _ = await api.call("POST", f"/v1/{meta['name']}:revoke", token, json={})
    assert s == 200
    await _refused_within_a_second(proxied, f"/v1/{ws}", key)


async def test_whoami_for_tokens_and_keys(api: Api) -> None:
    ws, token = await _workspace(api)
    s, me, _ = await api.call("GET", "/v1/whoami", token)
    assert s == 200 and me["type"] == "user" and me["aal"] == "aal1"
    assert {limit["class"] for limit in me["rateLimits"]} >= {"read", "write", "auth"}
    key, meta = await _key(api, token, ws)
    s, me, _ = await api.call("GET", "/v1/whoami", key)
    assert s == 200 and me["type"] == "apiKey" and me["workspace"] == ws
    assert sorted(me["scopes"]) == ["keys:read", "workspaces:read"]
    s, body, _ = await api.call("GET", "/v1/whoami")
    assert s == 401


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"allowedCidrs": ["10.0.0.1/8"]}, "CIDR_INVALID", "api_key.allowed_cidrs[0]"),
        ({"allowedCidrs": ["not-an-ip"]}, "CIDR_INVALID", "api_key.allowed_cidrs[0]"),
        ({"allowedOrigins": ["https://app.example.com/path"]}, None, None),
        ({"scopes": ["nonsense"]}, None, None),
    ],
)
async def test_bad_key_settings_are_400(
    api: Api, fields: dict[str, Any], code: str | None, field: str | None
) -> None:
    ws, token = await _workspace(api)
    body = {
        "displayName": "bad",
        "environment": "ENVIRONMENT_LIVE",
        "scopes": ["workspaces:read"],
        **fields,
    }
    s, problem, _ = await api.call("POST", f"/v1/{ws}/apiKeys", token, json=body)
    assert s == 400, problem
    assert problem["errors"], "field details are given"
    if code:
        assert problem["code"] == code
    if field:
        assert problem["errors"][0]["field"].endswith(field.split(".", 1)[1])


def _preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key",
    }


async def test_preflight_vouches_only_for_origins_an_active_key_allows(
    api: Api, proxied: Api
) -> None:
    ws, token = await _workspace(api)
    origin = f"https://app-{secrets.token_hex(4)}.example"
    for edge in (api, proxied):
        s, body, headers = await edge.call(
            "OPTIONS", f"/v1/{ws}", headers=_preflight_headers("http://evil.example")
        )
        assert (s, body["code"]) == (403, "ORIGIN_NOT_ALLOWED")
        assert headers["content-type"] == "application/problem+json"
        assert not [h for h in headers if h.startswith("access-control-")], headers
    _, meta = await _key(api, token, ws, allowedOrigins=[origin])
    created_at = time.monotonic()
    while True:  # a new key's origins are vouched for within the set's 0.5 s age bound
        s, _, headers = await proxied.call(
            "OPTIONS", f"/v1/{ws}", headers=_preflight_headers(origin)
        )
        if s == 204:
            break
        assert time.monotonic() - created_at < 1.0, "a new key's origin was not vouched for"
        await asyncio.sleep(0.05)
    assert headers["access-control-allow-origin"] == origin
    # once its only key is revoked, the origin is refused again within the revocation bound
    s, _, _ = await api.call("POST", f"/v1/{meta['name']}:revoke", token, json={})
    assert s == 200
    revoked_at = time.monotonic()
    while True:
        s, _, headers = await proxied.call(
            "OPTIONS", f"/v1/{ws}", headers=_preflight_headers(origin)
        )
        if s == 403:
            assert "access-control-allow-origin" not in headers
            break
        assert time.monotonic() - revoked_at < 1.0, (
            "a revoked key's origin was vouched for after 1 s"
        )
        await asyncio.sleep(0.05)
