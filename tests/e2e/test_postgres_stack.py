"""The same processes on PostgreSQL: one database per service, created and dropped by the test."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from devstack import Stack, StackPorts
from servicekit.kms import MasterKey
from testkit import fresh_database, postgres_admin_url

from .conftest import E2E_SERVICES, Api, api_for, running_stack

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not postgres_admin_url():
        pytest.skip("RAILGUARD_TEST_POSTGRES_URL not set")
    tmp = tmp_path_factory.mktemp("pg-stack")
    loop = asyncio.new_event_loop()
    contexts = {name: fresh_database("postgres", Path(tmp), name) for name in E2E_SERVICES}
    urls = {name: loop.run_until_complete(ctx.__aenter__()) for name, ctx in contexts.items()}
    master = tmp / "kms.key"
    MasterKey.generate().write_file(master)
    try:
        s = Stack(
            tmp,
            ports=StackPorts.free(),
            services=E2E_SERVICES,
            env={
                "RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100",
                "RAILGUARD_LOG_LEVEL": "WARNING",
                # a shared database needs explicit key material so every replica agrees
                "RAILGUARD_KEYS_PEPPERS": "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
                "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": base64.b64encode(
                    secrets.token_bytes(32)
                ).decode(),
                "RAILGUARD_KMS_URL": f"local://{tmp}/shared.keyring?master_key_file={master}&key=railguard",
            },
            database_urls=urls,
        )
        with running_stack(s) as running:
            yield running
    finally:
        for ctx in contexts.values():
            loop.run_until_complete(ctx.__aexit__(None, None, None))
        loop.close()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with api_for(stack) as a:
        yield a


async def test_journey_on_postgres(api: Api) -> None:
    owner_email, owner, tokens = await api.user()
    member_email, member, _ = await api.user()
    s, body, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert s == 200
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "On Postgres"})
    assert s == 200
    s, m, _ = await api.call(
        "POST",
        f"/v1/{ws['name']}/members",
        owner,
        json={"email": member_email, "role": "ROLE_USER"},
    )
    assert s == 200, m
    s, _, _ = await api.call("GET", f"/v1/{ws['name']}", member)
    assert s == 200
    s, created, _ = await api.call(
        "POST",
        f"/v1/{ws['name']}/apiKeys",
        owner,
        json={
            "displayName": "pg",
            "environment": "ENVIRONMENT_LIVE",
            "scopes": ["workspaces:read"],
        },
    )
    assert s == 200, created
    s, got, _ = await api.call("GET", f"/v1/{ws['name']}", created["key"])
    assert s == 200 and got["displayName"] == "On Postgres"
    s, cred, _ = await api.call(
        "POST",
        f"/v1/{ws['name']}/credentials",
        owner,
        json={
            "displayName": "pg",
            "provider": "anthropic",
            "value": "sk-ant-api03-" + "x" * 40 + "tail",
        },
    )
    assert s == 200 and cred["maskedValue"].endswith("tail") and "x" * 20 not in str(cred), cred
    concurrent = await asyncio.gather(
        *[
            api.call(
                "POST", "/v1/auth:refresh", json={"refreshToken": body["tokens"]["refreshToken"]}
            )
            for _ in range(4)
        ]
    )
    assert all(r[0] == 200 for r in concurrent)
    assert len({r[1]["tokens"]["refreshToken"] for r in concurrent}) == 1
