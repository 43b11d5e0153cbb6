"""Issue 8 over HTTPS: no caller obtains a key whose rights exceed its own; MFA reaches keys.

Each test reproduces one hole as an attacker would, through the edge:

1. an Admin rotating the Owner's key got a secret acting as the Owner;
2. a ``keys:write`` key could rotate a wider key and use its secret;
3. a CIDR-restricted key could PATCH its restrictions away or mint an unrestricted child;
4. in a workspace requiring MFA, keys made at aal1 kept working;
7. 4-digit PINs were accepted, and one client's wrong guesses locked the PIN out for everyone.

Edge 1 trusts 127.0.0.1 as a proxy, so a test can present distinct client addresses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from devstack import Stack, StackPorts

from .conftest import E2E_SERVICES, Api, api_for, running_stack
from .test_mfa import _enroll

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("key-rights-stack"),
        ports=StackPorts.free(),
        services=E2E_SERVICES,
        env={"RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100", "RAILGUARD_LOG_LEVEL": "WARNING"},
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


async def _workspace(api: Api, **fields: Any) -> tuple[str, str]:
    _, owner, _ = await api.user()
    body = {"displayName": "Rights", **fields}
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json=body)
    assert s == 200, ws
    return ws["name"], owner


async def _member(api: Api, ws: str, owner: str, role: str) -> str:
    email, token, _ = await api.user()
    s, body, _ = await api.call(
        "POST", f"/v1/{ws}/members", owner, json={"email": email, "role": role}
    )
    assert s == 200, body
    return token


async def _key(api: Api, token: str, ws: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    body = {"displayName": "k", "environment": "ENVIRONMENT_LIVE", "scopes": ["keys:write"]}
    body.update(fields)
    s, created, _ = await api.call("POST", f"/v1/{ws}/apiKeys", token, json=body)
    assert s == 200, created
    return created["key"], created["apiKey"]


async def test_an_admin_rotating_the_owners_key_cannot_act_as_the_owner(api: Api) -> None:
    ws, owner = await _workspace(api)
    admin = await _member(api, ws, owner, "ROLE_ADMIN")
    _, owner_key = await _key(api, owner, ws, scopes=["workspaces:write", "workspaces:read"])
    s, rotated, _ = await api.call("POST", f"/v1/{owner_key['name']}:rotate", admin, json={})
    assert s == 200, rotated  # re-bound to the Admin (docs/api-keys.md), not refused
    assert rotated["apiKey"]["createdBy"] != owner_key["createdBy"]
    secret = rotated["key"]
    s, body, _ = await api.call(
        "PATCH", f"/v1/{ws}?updateMask=plan", secret, json={"plan": "PLAN_TEAM"}
    )
    assert s == 403, body  # Owner-only: the new secret acts as the Admin who rotated it
    s, got, _ = await api.call("GET", f"/v1/{ws}", owner)
    assert got.get("plan", "PLAN_FREE") in {"PLAN_FREE", "PLAN_UNSPECIFIED"}, got


async def test_a_keys_write_key_cannot_rotate_a_wider_key(api: Api) -> None:
    ws, owner = await _workspace(api)
    _, wide = await _key(api, owner, ws, scopes=["members:write", "keys:write"])
    narrow, _ = await _key(api, owner, ws, scopes=["keys:write"])
    s, body, _ = await api.call("POST", f"/v1/{wide['name']}:rotate", narrow, json={})
    assert (s, body["code"]) == (403, "SCOPE_EXCEEDS_CREATOR"), body
    assert "key" not in body


async def test_a_restricted_key_cannot_shed_its_restrictions(api: Api) -> None:
    ws, owner = await _workspace(api)
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    restricted, meta = await _key(api, owner, ws, allowedCidrs=["127.0.0.0/8"], expireTime=expiry)
    path = f"/v1/{meta['name']}"
    s, body, _ = await api.call(
        "PATCH", f"{path}?updateMask=allowedCidrs", restricted, json={"allowedCidrs": []}
    )
    assert (s, body["code"]) == (403, "CIDRS_EXCEED_CALLER"), body
    s, body, _ = await api.call("PATCH", f"{path}?updateMask=expireTime", restricted, json={})
    assert (s, body["code"]) == (403, "EXPIRY_EXCEEDS_CALLER"), body
    s, body, _ = await api.call(
        "POST",
        f"/v1/{ws}/apiKeys",
        restricted,
        json={"displayName": "child", "environment": "ENVIRONMENT_LIVE", "scopes": ["keys:write"]},
    )
    assert (s, body["code"]) == (403, "CIDRS_EXCEED_CALLER"), body
    # the restrictions are intact, and a child within them is fine
    s, got, _ = await api.call("GET", path, owner)
    assert got["allowedCidrs"] == ["127.0.0.0/8"] and got.get("expireTime"), got
    _, child = await _key(api, restricted, ws, allowedCidrs=["127.0.0.1/32"], expireTime=expiry)
    assert child["allowedCidrs"] == ["127.0.0.1/32"]


async def test_an_aal1_key_in_a_workspace_that_requires_mfa_is_refused(api: Api) -> None:
    ws, owner = await _workspace(api)
    weak, _ = await _key(api, owner, ws, scopes=["workspaces:read"])  # made at aal1
    s, _, _ = await api.call("GET", f"/v1/{ws}", weak)
    assert s == 200
    _, done = await _enroll(api, owner)
    strong_owner = done["tokens"]["accessToken"]
    strong, _ = await _key(api, strong_owner, ws, scopes=["workspaces:read"])
    s, body, _ = await api.call(
        "PATCH", f"/v1/{ws}?updateMask=mfaRequired", strong_owner, json={"mfaRequired": True}
    )
    assert s == 200, body
    s, body, _ = await api.call("GET", f"/v1/{ws}", weak)
    assert (s, body["code"]) == (403, "MFA_REQUIRED"), body
    s, body, _ = await api.call("GET", f"/v1/{ws}", strong)  # made at aal2: still works
    assert s == 200, body


async def test_pins_have_six_digits_and_one_guesser_locks_out_only_itself(
    api: Api, proxied: Api
) -> None:
    ws, owner = await _workspace(api)
    pin_path = f"/v1/{ws}/deployments/d1/pin"
    for short in ("2580", "73914"):
        s, body, _ = await api.call("POST", f"{pin_path}:set", owner, json={"pin": short})
        assert (s, body["code"]) == (400, "PIN_TOO_SHORT"), body
        assert short not in str(body)
    s, body, _ = await api.call("POST", f"{pin_path}:set", owner, json={"pin": "258046"})
    assert s == 200, body
    verify = f"/v1/{ws}/deployments/d1:verifyPin"

    def client(ip: str) -> dict[str, str]:
        return {"X-Forwarded-For": ip}

    statuses = []
    for i in range(8):
        s, body, _ = await proxied.call(
            "POST", verify, json={"pin": f"{100000 + i}"}, headers=client("203.0.113.5")
        )
        statuses.append((s, body["code"]))
    assert statuses[:5] == [(401, "INVALID_PIN")] * 5
    assert statuses[-1] == (429, "PIN_THROTTLED"), statuses
    # the guesser waits, even with the right PIN; another client gets in
    s, body, _ = await proxied.call(
        "POST", verify, json={"pin": "258046"}, headers=client("203.0.113.5")
    )
    assert (s, body["code"]) == (429, "PIN_THROTTLED"), body
    s, body, _ = await proxied.call(
        "POST", verify, json={"pin": "258046"}, headers=client("203.0.113.6")
    )
    assert s == 200 and body["accessToken"], body


async def test_a_restricted_key_cannot_shed_its_restrictions_through_a_webhook_token(
    api: Api,
) -> None:
    ws, owner = await _workspace(api)
    body = {"displayName": "hook"}
    restricted, _ = await _key(
        api, owner, ws, scopes=["webhooks:write"], allowedCidrs=["::1/128", "127.0.0.0/8"]
    )
    s, got, _ = await api.call("POST", f"/v1/{ws}/webhookTriggers", restricted, json=body)
    assert (s, got["code"]) == (403, "KEY_RESTRICTED"), got
    free, _ = await _key(api, owner, ws, scopes=["webhooks:write"])
    s, got, _ = await api.call("POST", f"/v1/{ws}/webhookTriggers", free, json=body)
    assert s == 200 and got["token"], got
