"""A deleted workspace is dead everywhere (issue 8, hole 3), over HTTPS against the real processes:
its hooks and credentials stop at once, a purge destroys the keys' digests, the credentials'
ciphertexts and the hooks' token hashes in their own databases while tombstones stay, and the
cascade reaches a service that was down when it happened once that service is back.

The purge is the real command (``python -m workspaces_service purge``); the retention window is
made to have ended by moving the workspace's ``deleted_at`` back in its SQLite database.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from devstack import Stack
from railguard.credentials.v1 import credentials_service_pb2 as cpb
from railguard.credentials.v1 import credentials_service_pb2_grpc
from servicekit import Principal
from testkit import channel_as, principal_metadata

from .conftest import Api, api_for

VALUE = "sk-proj-" + secrets.token_hex(20) + "Zz9q"
HOOK_HEADER = "X-Railguard-Webhook-Token"
PIN = "73914062"  # 8 digits: within any PIN floor


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with api_for(stack) as a:
        yield a


class World:
    """One workspace with a credential, a webhook trigger and an API key, all working."""

    def __init__(self, api: Api, stack: Stack) -> None:
        self.api, self.stack = api, stack

    async def make(self) -> World:
        api = self.api
        _, self.owner, _ = await api.user()
        s, ws, _ = await api.call("POST", "/v1/workspaces", self.owner, json={"displayName": "L"})
        assert s == 200, ws
        self.ws = ws["name"]
        self.ws_id = self.ws.split("/")[1]
        s, cred, _ = await api.call(
            "POST",
            f"/v1/{self.ws}/credentials",
            self.owner,
            json={"displayName": "llm", "provider": "openai", "value": VALUE},
        )
        assert s == 200, cred
        self.credential = cred["name"]
        s, hook, _ = await api.call(
            "POST", f"/v1/{self.ws}/webhookTriggers", self.owner, json={"displayName": "ci"}
        )
        assert s == 200, hook
        self.hook_token, self.hook_path = hook["token"], hook["webhookTrigger"]["urlPath"]
        self.hook_id = self.hook_path.rsplit("/", 1)[1]
        s, key, _ = await api.call(
            "POST",
            f"/v1/{self.ws}/apiKeys",
            self.owner,
            json={
                "displayName": "ci",
                "environment": "ENVIRONMENT_LIVE",
                "scopes": ["workspaces:read"],
            },
        )
        assert s == 200, key
        self.key, self.key_id = key["key"], key["apiKey"]["name"].rsplit("/", 1)[1]
        s, pin, _ = await api.call(
            "POST", f"/v1/{self.ws}/deployments/d1/pin:set", self.owner, json={"pin": PIN}
        )
        assert s == 200, pin
        assert (await self.verify_pin())[0] == 200
        assert (await self.deliver())[0] == 200
        assert await self.use() == VALUE
        assert (await api.call("GET", f"/v1/{self.ws}", self.key))[0] == 200
        return self

    async def deliver(self, path: str = "") -> tuple[int, Any]:
        s, body, _ = await self.api.call(
            "POST", path or self.hook_path, json={"e": 1}, headers={HOOK_HEADER: self.hook_token}
        )
        return s, body

    async def verify_pin(self, pin: str = PIN, ws: str = "") -> tuple[int, Any]:
        s, body, _ = await self.api.call(
            "POST", f"/v1/{ws or self.ws}/deployments/d1:verifyPin", json={"pin": pin}
        )
        return s, body

    async def use(self) -> str:
        """UseCredential as the workflow runtime calls it (mTLS identity ``runtime``)."""
        channel = channel_as("runtime", self.stack.certs, self.stack.ports.credentials)
        try:
            stub = credentials_service_pb2_grpc.CredentialsServiceStub(channel)
            reply = await stub.UseCredential(
                cpb.UseCredentialRequest(name=self.credential, purpose="e2e"),
                metadata=principal_metadata(Principal(user_id="rt", workspace_id=self.ws_id)),
                timeout=10,
            )
            return str(reply.value)
        finally:
            await channel.close()

    async def delete(self) -> None:
        s, body, _ = await self.api.call("DELETE", f"/v1/{self.ws}", self.owner)
        assert s == 200, body

    def end_retention(self) -> None:
        with sqlite3.connect(self.stack.state / "workspaces.db") as db:
            db.execute(
                "UPDATE workspaces SET deleted_at = '2020-01-01 00:00:00.000000' WHERE id = ?",
                (self.ws_id,),
            )

    def purge(self) -> str:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "workspaces_service", "purge"],
            env={**self.stack.service_env("workspaces"), "RAILGUARD_LOG_LEVEL": "ERROR"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def rows(self, service: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.stack.state / f"{service}.db") as db:
            return list(db.execute(sql, params).fetchall())

    def credentials_rows(self) -> list[tuple[Any, ...]]:
        return self.rows(
            "credentials",
            "SELECT ciphertext, masked_value, purged_at FROM credentials WHERE workspace_id = ?",
            self.ws_id,
        )

    def trigger_rows(self) -> list[tuple[Any, ...]]:
        return self.rows(
            "credentials",
            "SELECT token_ciphertext, token_hash, purged_at, display_name FROM webhook_triggers "
            "WHERE workspace_id = ?",
            self.ws_id,
        )

    def key_rows(self) -> list[tuple[Any, ...]]:
        return self.rows(
            "keys",
            "SELECT secret_digest, previous_digest, purged_at, name FROM api_keys "
            "WHERE workspace_id = ?",
            self.ws_id,
        )

    def pin_rows(self) -> list[tuple[Any, ...]]:
        return self.rows(
            "auth", "SELECT pin_hash FROM deployment_pins WHERE workspace_id = ?", self.ws_id
        )

    def secrets_gone(self) -> bool:
        creds, hooks, keys = self.credentials_rows(), self.trigger_rows(), self.key_rows()
        return (
            len(creds) == len(hooks) == len(keys) == 1
            and creds[0][0] is None
            and hooks[0][0] is None
            and hooks[0][1] is None
            and keys[0][0] is None
        )


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "the cascade did not arrive in time"
        await asyncio.sleep(0.2)


async def test_after_a_soft_delete_the_hook_and_use_credential_are_refused(
    api: Api, stack: Stack
) -> None:
    world = await World(api, stack).make()
    await world.delete()

    async def hook_refused() -> bool:
        return (await world.deliver())[0] == 404

    await eventually(hook_refused, within=10)
    status, dead = await world.deliver()
    unknown_status, unknown = await world.deliver(f"/v1/hooks/{secrets.token_hex(16)}")
    # nothing more than an unknown trigger would tell
    assert status == unknown_status == 404
    assert (dead["code"], dead["detail"]) == (unknown["code"], unknown["detail"])
    # the Agent UI PIN: the right PIN of a deleted workspace answers like a wrong one
    pin_status, pin_dead = await world.verify_pin()
    wrong_status, pin_wrong = await world.verify_pin("00000000")
    assert pin_status == wrong_status == 401
    assert (pin_dead["code"], pin_dead["detail"]) == (pin_wrong["code"], pin_wrong["detail"])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.use()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deleted" in (err.value.details() or "")
    # the secrets are still there: a soft delete can be undone
    assert world.credentials_rows()[0][0] is not None
    s, body, _ = await api.call("POST", f"/v1/{world.ws}:undelete", world.owner, json={})
    assert s == 200, body

    async def hook_back() -> bool:
        return (await world.deliver())[0] == 200

    await eventually(hook_back, within=10)
    assert await world.use() == VALUE
    assert (await world.verify_pin())[0] == 200


async def test_a_purge_destroys_the_secrets_in_every_service_and_keeps_tombstones(
    api: Api, stack: Stack
) -> None:
    world = await World(api, stack).make()
    await world.delete()
    world.end_retention()
    assert "purged 1 workspace(s)" in world.purge()

    async def gone() -> bool:
        return world.secrets_gone()

    await eventually(gone)
    [(_, masked, purged_at)] = world.credentials_rows()
    assert masked == "" and purged_at is not None
    [(_, _, hook_purged, hook_name)] = world.trigger_rows()
    assert hook_purged is not None and hook_name == "ci"
    [(_, previous, key_purged, key_name)] = world.key_rows()
    assert previous is None and key_purged is not None and key_name == "ci"
    assert (await world.deliver())[0] == 404
    s, body, _ = await api.call("GET", "/v1/whoami", world.key)
    assert s == 401, body

    async def pins_gone() -> bool:
        return world.pin_rows() == []

    await eventually(pins_gone)
    assert (await world.verify_pin())[0] == 401


async def test_the_cascade_reaches_services_that_were_down_once_they_are_back(
    api: Api, stack: Stack
) -> None:
    world = await World(api, stack).make()
    stack.stop_service("credentials")
    stack.stop_service("keys")
    try:
        await world.delete()
        world.end_retention()
        assert "purged 1 workspace(s)" in world.purge()  # the receivers do not answer
        await asyncio.sleep(1.0)
        assert not world.secrets_gone()  # nothing could reach them
    finally:
        stack.start_service("keys")
        stack.start_service("credentials")

    async def gone() -> bool:
        return world.secrets_gone()

    await eventually(gone)
    assert (await world.deliver())[0] == 404
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.use()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_hook_400_says_the_token_travels_only_in_its_header(
    api: Api, stack: Stack
) -> None:
    world = await World(api, stack).make()
    s, body, _ = await api.call("POST", f"{world.hook_path}?token={world.hook_token}", json={})
    assert s == 400 and body["code"] == "FIELD_NOT_ALLOWED_HERE", body
    text = str(body)
    assert world.hook_token not in text  # never echoed
    assert f"only in the {HOOK_HEADER} request header, never in the URL or the body" in text, body
