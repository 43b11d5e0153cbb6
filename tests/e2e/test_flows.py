"""The connections the running suite opens are all in the declared list (servicekit.flows).

The journey runs against the real processes; each gRPC server logs the SPIFFE identity of every
mTLS client it served (the ``caller`` of each ``rpc`` log line), so the servers' logs record
every (caller → callee) connection that carried a call. A connection missing from FLOWS fails
the test: the NetworkPolicies are derived from that list, so in a cluster it would be blocked.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import Stack
from servicekit.flows import FLOWS

from .conftest import E2E_SERVICES, Api, _stack, api_for, running_stack

# The flows today's code makes and this journey exercises. workspaces → keys/credentials (the
# lifecycle relay) are declared for the work that adds them; they need not be seen yet.
EXERCISED = {
    ("edge", "auth"),
    ("edge", "workspaces"),
    ("edge", "keys"),
    ("edge", "credentials"),
    ("keys", "workspaces"),  # ResolveAccess for an API key; the keys audit relay
    ("auth", "workspaces"),  # the auth audit relay
    ("credentials", "workspaces"),  # the credentials audit relay
    ("workspaces", "auth"),  # LookupUser when a member is added
}


@pytest.fixture(scope="module")
def logged_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = _stack(tmp_path_factory.mktemp("flows"), env={"RAILGUARD_LOG_LEVEL": "INFO"})
    with running_stack(stack) as s:
        yield s


def observed_connections(state: Path) -> set[tuple[str, str]]:
    """(caller, callee) of every RPC a server logged, from the services' JSON logs."""
    seen: set[tuple[str, str]] = set()
    for service in E2E_SERVICES:
        for line in (state / f"{service}.log").read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("msg") == "rpc":
                seen.add((str(record.get("caller") or "<no identity>"), service))
    return seen


async def _journey(api: Api) -> None:
    _, owner, _ = await api.user()
    member_email, _, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Flows"})
    assert s == 200, ws
    name = ws["name"]
    s, body, _ = await api.call(
        "POST", f"/v1/{name}/members", owner, json={"email": member_email, "role": "ROLE_USER"}
    )
    assert s == 200, body
    s, created, _ = await api.call(
        "POST",
        f"/v1/{name}/apiKeys",
        owner,
        json={
            "displayName": "ci",
            "environment": "ENVIRONMENT_LIVE",
            "scopes": ["workspaces:read"],
        },
    )
    assert s == 200, created
    s, body, _ = await api.call("GET", f"/v1/{name}", headers={"X-API-Key": created["key"]})
    assert s == 200, body
    value = "sk-proj-abc" + secrets.token_hex(20) + "xyz9"
    s, body, _ = await api.call(
        "POST",
        f"/v1/{name}/credentials",
        owner,
        json={"displayName": "OpenAI", "provider": "openai", "value": value},
    )
    assert s == 200, body


async def test_every_connection_the_journey_opens_is_declared(logged_stack: Stack) -> None:
    async with api_for(logged_stack) as api:
        await _journey(api)
    declared = {(f.caller, f.callee) for f in FLOWS}
    seen: set[tuple[str, str]] = set()
    for _ in range(100):  # the audit relays ship within about a second; bounded wait
        seen = observed_connections(logged_stack.state)
        if EXERCISED <= seen:
            break
        await asyncio.sleep(0.2)
    assert sorted(seen - declared) == [], "connections not in servicekit.flows.FLOWS"
    assert sorted(EXERCISED - seen) == [], "the journey did not exercise these flows"
