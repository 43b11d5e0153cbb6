"""The composition root against the real workspaces service, and the Redis invalidation channel."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import grpc
import pytest
from keys_service.__main__ import MIGRATIONS, build
from keys_service.adapters.invalidation import CHANNEL, RedisInvalidationPublisher
from keys_service.domain import PepperRing
from keys_service.usecases import KeyEvent
from railguard.access.v1 import access_pb2
from railguard.keys.v1 import keys_service_pb2 as pb
from railguard.keys.v1 import keys_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as wpb
from redis.asyncio import Redis
from servicekit import Principal
from testkit import channel_as, principal_metadata, redis_url, running
from testkit import test_settings as settings_for

from ...unit.keys.fakes_keys import minted_key
from ..workspaces.conftest import WorkspacesServer, workspaces_server  # noqa: F401
from .conftest import PEPPERS


async def test_keys_stop_within_a_second_of_their_workspace_being_deleted(
    pki: Path,
    database_url: str,
    workspaces_server: WorkspacesServer,  # noqa: F811
) -> None:
    ws_stub = workspaces_server.stub()
    ws = await ws_stub.CreateWorkspace(
        wpb.CreateWorkspaceRequest(workspace=wpb.Workspace(display_name="Acme")),
        metadata=principal_metadata(Principal(user_id="alice")),
    )
    ws_id = ws.name.split("/")[1]
    owner = Principal(user_id="alice", workspace_id=ws_id, role=access_pb2.ROLE_OWNER)
    settings = settings_for(
        "keys",
        pki,
        database_url,
        {
            "RAILGUARD_KEYS_PEPPERS": PEPPERS,
            "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{workspaces_server.port}",
        },
    )
    async with running(settings, build, MIGRATIONS) as server:
        stub = keys_service_pb2_grpc.KeysServiceStub(channel_as("edge", pki, server.port))
        created = await stub.CreateApiKey(
            pb.CreateApiKeyRequest(
                parent=ws.name,
                api_key=pb.ApiKey(
                    display_name="CI", environment=pb.ENVIRONMENT_LIVE, scopes=["keys:read"]
                ),
            ),
            metadata=principal_metadata(owner),
        )
        verify = pb.VerifyApiKeyRequest(key=created.key, required_scope="keys:read")
        assert (await stub.VerifyApiKey(verify)).workspace_id == ws_id
        await ws_stub.DeleteWorkspace(
            wpb.DeleteWorkspaceRequest(name=ws.name), metadata=principal_metadata(owner)
        )
        deadline = time.monotonic() + 1.5  # the status cache holds an answer for at most 1 s
        while True:
            try:
                await stub.VerifyApiKey(verify)
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED
                break
            assert time.monotonic() < deadline, "deleted workspace still admitted keys"
            await asyncio.sleep(0.05)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RevokeApiKey(
                pb.RevokeApiKeyRequest(name=created.api_key.name),
                metadata=principal_metadata(owner),
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.redis
async def test_invalidations_reach_a_subscriber_on_the_channel() -> None:
    url = redis_url()
    if not url:
        pytest.skip("RAILGUARD_TEST_REDIS_URL not set")
    ring = PepperRing({1: b"r" * 32}, current=1)
    key, _ = minted_key(ring, key_id="k_redis", workspace_id="w1", now=dt.datetime.now(dt.UTC))
    subscriber = Redis.from_url(url)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe(CHANNEL)
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    publisher = RedisInvalidationPublisher.from_url(url)
    try:
        started = time.monotonic()
        await publisher.key_changed(key, KeyEvent.REVOKED)
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        assert message is not None and time.monotonic() - started < 1.0
        assert json.loads(message["data"])["key_id"] == "k_redis"
    finally:
        await publisher.close()
        await pubsub.aclose()
        await subscriber.aclose()


async def test_an_unreachable_redis_never_fails_the_mutation() -> None:
    ring = PepperRing({1: b"r" * 32}, current=1)
    key, _ = minted_key(ring, key_id="k", workspace_id="w1", now=dt.datetime.now(dt.UTC))
    publisher = RedisInvalidationPublisher.from_url("redis://127.0.0.1:1/0")
    try:
        await publisher.key_changed(key, KeyEvent.REVOKED)  # logged, not raised
    finally:
        await publisher.close()


async def test_the_relay_ships_audit_events_to_the_workspace_log(
    pki: Path,
    database_url: str,
    workspaces_server: WorkspacesServer,  # noqa: F811
) -> None:
    """The production root starts the relay: events reach AppendAuditEvents as caller ``keys``."""
    ws_id = await workspaces_server.team()
    owner = principal_metadata(
        Principal(
            user_id="alice",
            workspace_id=ws_id,
            role=access_pb2.ROLE_OWNER,
            client_ip="198.51.100.9",
        )
    )
    settings = settings_for(
        "keys",
        pki,
        database_url,
        {
            "RAILGUARD_KEYS_PEPPERS": PEPPERS,
            "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{workspaces_server.port}",
        },
    )
    async with running(settings, build, MIGRATIONS) as server:
        stub = keys_service_pb2_grpc.KeysServiceStub(channel_as("edge", pki, server.port))
        created = await stub.CreateApiKey(
            pb.CreateApiKeyRequest(
                parent=f"workspaces/{ws_id}",
                api_key=pb.ApiKey(
                    display_name="CI", environment=pb.ENVIRONMENT_LIVE, scopes=["keys:read"]
                ),
            ),
            metadata=owner,
        )
        await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=created.api_key.name), metadata=owner)
        ws_stub = workspaces_server.stub()
        deadline = time.monotonic() + 5
        while True:
            listed = await ws_stub.ListAuditEvents(
                wpb.ListAuditEventsRequest(parent=f"workspaces/{ws_id}"), metadata=owner
            )
            ours = [e for e in listed.audit_events if e.source == "keys"]
            if len(ours) == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert [(e.action, e.actor, e.target) for e in reversed(ours)] == [
        ("apiKey.create", "user:alice", created.api_key.name),
        ("apiKey.revoke", "user:alice", created.api_key.name),
    ]
    assert ours[0].client_ip == "198.51.100.9"
    assert created.key not in str(listed)
    report = await ws_stub.VerifyAuditChain(
        wpb.VerifyAuditChainRequest(name=f"workspaces/{ws_id}"), metadata=owner
    )
    assert report.ok
