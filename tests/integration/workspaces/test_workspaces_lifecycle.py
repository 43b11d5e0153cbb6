"""Workspace life leaving the workspaces service (issue 8): each delete, restore and purge queues
one versioned event per receiver in the change's transaction, and the production relays deliver
them to real keys and credentials servers at least once, also when a receiver was down at the
time: the events wait and arrive once it is back."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from credentials_service.__main__ import MIGRATIONS as CREDENTIALS_MIGRATIONS
from credentials_service.__main__ import build as build_credentials
from devstack import free_port
from keys_service.__main__ import MIGRATIONS as KEYS_MIGRATIONS
from keys_service.__main__ import build as build_keys
from railguard.credentials.v1 import credentials_service_pb2 as cpb
from railguard.credentials.v1 import credentials_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import AuditRelay, Principal, session_factory
from servicekit.db import dispose_engine
from servicekit.kms import MasterKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from testkit import channel_as, principal_metadata, running, test_settings
from workspaces_service.__main__ import lifecycle_relays, lifecycle_sinks

from .conftest import OWNER, WorkspacesServer, as_user

OPENAI = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDxyz9"


async def _outbox(server: WorkspacesServer, receiver: str) -> list[dict[str, object]]:
    async with server.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    f"SELECT payload, sent_at FROM workspace_lifecycle_outbox_{receiver} "  # noqa: S608
                    "ORDER BY seq"
                )
            )
        ).all()
    return [{**json.loads(p), "sent": s is not None} for p, s in rows]


async def test_delete_restore_purge_queue_one_event_per_receiver(
    workspaces_server: WorkspacesServer,
) -> None:
    server = workspaces_server
    ws_id = await server.team()
    stub, owner = server.stub(), as_user("alice", ws_id, OWNER)
    name = f"workspaces/{ws_id}"
    await stub.DeleteWorkspace(pb.DeleteWorkspaceRequest(name=name), metadata=owner)
    await stub.UndeleteWorkspace(pb.UndeleteWorkspaceRequest(name=name), metadata=owner)
    await stub.DeleteWorkspace(pb.DeleteWorkspaceRequest(name=name), metadata=owner)
    # a refused change queues nothing
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.DeleteWorkspace(
            pb.DeleteWorkspaceRequest(name=name), metadata=as_user("bob", ws_id, OWNER)
        )
    assert await server.service.purge_expired(server.clock.advance(days=30)) == [ws_id]
    for receiver in ("auth", "keys", "credentials"):
        events = await _outbox(server, receiver)
        assert [(e["workspace_id"], e["metadata"]) for e in events] == [
            (ws_id, {"state": "deleted", "version": "1"}),
            (ws_id, {"state": "active", "version": "2"}),
            (ws_id, {"state": "deleted", "version": "3"}),
            (ws_id, {"state": "purged", "version": "4"}),
        ]
        assert {e["action"] for e in events} == {"workspace.lifecycle"}
    async with server.engine.connect() as conn:
        version = (
            await conn.execute(
                text("SELECT lifecycle_version FROM workspaces WHERE id = :w"), {"w": ws_id}
            )
        ).scalar_one()
    assert version == 4


async def _delivered_by_the_running_relay(
    server: WorkspacesServer, receiver: str, relay: AuditRelay, within: float = 30.0
) -> None:
    """Start the relay as the server does and wait (bounded) until its outbox is all sent."""
    relay.start()
    try:
        deadline = time.monotonic() + within
        while not all(e["sent"] for e in await _outbox(server, receiver)):
            assert time.monotonic() < deadline, f"{receiver} never got its events"
            await asyncio.sleep(0.1)
    finally:
        await relay.stop()


def _credentials_settings(pki: Path, tmp: Path, port: int, workspaces_port: int) -> object:
    master = tmp / "kms-master-key"
    if not master.exists():
        MasterKey.generate().write_file(master)
    return test_settings(
        "credentials",
        pki,
        f"sqlite+aiosqlite:///{tmp / 'credentials.db'}",
        {
            "RAILGUARD_LISTEN": f"127.0.0.1:{port}",
            "RAILGUARD_KMS_URL": f"local://{tmp / 'keyring.json'}?master_key_file={master}"
            "&key=credentials",
            "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": base64.b64encode(b"p" * 32).decode(),
            "RAILGUARD_STATE_DIR": str(tmp / "state"),
            "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{workspaces_port}",
        },
    )


async def test_the_cascade_waits_for_a_receiver_that_is_down_and_arrives_when_it_is_back(
    workspaces_server: WorkspacesServer, pki: Path, tmp_path: Path
) -> None:
    server = workspaces_server
    keys_port, credentials_port = free_port(), free_port()
    settings = test_settings(
        "workspaces",
        pki,
        server.database_url,
        {
            "RAILGUARD_AUTH_ADDR": f"127.0.0.1:{free_port()}",  # nothing listens: not driven here
            "RAILGUARD_KEYS_ADDR": f"127.0.0.1:{keys_port}",
            "RAILGUARD_CREDENTIALS_ADDR": f"127.0.0.1:{credentials_port}",
        },
    )
    sinks, channels = lifecycle_sinks(settings)
    _, keys_relay, credentials_relay = lifecycle_relays(session_factory(server.engine), sinks)
    credentials_settings = _credentials_settings(pki, tmp_path, credentials_port, server.port)
    ws_id = await server.team()
    principal = principal_metadata(Principal(user_id="alice", workspace_id=ws_id, role=OWNER))
    try:
        # a credential and a hook exist while the credentials server is up
        async with running(credentials_settings, build_credentials, CREDENTIALS_MIGRATIONS) as c:  # type: ignore[arg-type]
            vault = credentials_service_pb2_grpc.CredentialsServiceStub(
                channel_as("edge", pki, c.port)
            )
            created = await vault.CreateCredential(
                cpb.CreateCredentialRequest(
                    parent=f"workspaces/{ws_id}",
                    credential=cpb.Credential(display_name="k", provider="openai", value=OPENAI),
                ),
                metadata=principal,
            )
        # ... then it is down while the workspace is deleted and purged
        stub, owner = server.stub(), as_user("alice", ws_id, OWNER)
        await stub.DeleteWorkspace(
            pb.DeleteWorkspaceRequest(name=f"workspaces/{ws_id}"), metadata=owner
        )
        assert await server.service.purge_expired(server.clock.advance(days=30)) == [ws_id]
        for relay in (keys_relay, credentials_relay):
            with pytest.raises(Exception):  # noqa: B017,PT011 - nothing listens: UNAVAILABLE
                await relay.run_once()
        assert not any(e["sent"] for e in await _outbox(server, "credentials"))

        # back up: the relay's own retry loop delivers both events
        async with running(credentials_settings, build_credentials, CREDENTIALS_MIGRATIONS):  # type: ignore[arg-type]
            await _delivered_by_the_running_relay(server, "credentials", credentials_relay)
            assert await credentials_relay.drain() == 0  # nothing is sent twice once marked
        keys_settings = test_settings(
            "keys",
            pki,
            f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}",
            {
                "RAILGUARD_LISTEN": f"127.0.0.1:{keys_port}",
                "RAILGUARD_KEYS_PEPPERS": "1:" + base64.b64encode(b"k" * 32).decode(),
                "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{server.port}",
            },
        )
        async with running(keys_settings, build_keys, KEYS_MIGRATIONS):
            await _delivered_by_the_running_relay(server, "keys", keys_relay)
    finally:
        for channel in channels:
            await channel.close()

    assert all(e["sent"] for e in await _outbox(server, "credentials"))
    assert all(e["sent"] for e in await _outbox(server, "keys"))
    for db in ("credentials.db", "keys.db"):
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / db}")
        async with engine.connect() as conn:
            held = (
                await conn.execute(
                    text("SELECT state, version FROM workspace_lifecycle WHERE workspace_id = :w"),
                    {"w": ws_id},
                )
            ).all()
            if db == "credentials.db":
                ciphertext = (
                    await conn.execute(
                        text("SELECT ciphertext, purged_at FROM credentials WHERE id = :c"),
                        {"c": created.name.rsplit("/", 1)[1]},
                    )
                ).one()
                assert ciphertext[0] is None and ciphertext[1] is not None
        await dispose_engine(engine)
        assert [tuple(r) for r in held] == [("purged", 2)], db


async def test_the_migration_queues_workspaces_deleted_or_purged_before_it(
    database_url: str,
) -> None:
    from servicekit import upgrade
    from workspaces_service.__main__ import MIGRATIONS

    await upgrade(database_url, "workspaces", MIGRATIONS, "ws_0002")
    engine = create_async_engine(database_url)
    then = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    try:
        async with engine.begin() as conn:
            for ws_id, deleted, purged in (
                ("live", None, None),
                ("gone", then, None),
                ("purged", then, then),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO workspaces (id, display_name, plan, mfa_required, "
                        "retention_days, created_by, created_at, updated_at, deleted_at, "
                        "purged_at) VALUES (:id, 'x', 1, false, 30, 'alice', :t, :t, "
                        ":d, :p)"
                    ),
                    {"id": ws_id, "t": dt.datetime.now(dt.UTC), "d": deleted, "p": purged},
                )
        await upgrade(database_url, "workspaces", MIGRATIONS)
        async with engine.connect() as conn:
            versions = dict(
                (await conn.execute(text("SELECT id, lifecycle_version FROM workspaces"))).all()
            )
            queued = {
                receiver: [
                    json.loads(p)
                    for (p,) in (
                        await conn.execute(
                            text(
                                f"SELECT payload FROM workspace_lifecycle_outbox_{receiver} "  # noqa: S608
                                "WHERE sent_at IS NULL ORDER BY seq"
                            )
                        )
                    ).all()
                ]
                for receiver in ("auth", "keys", "credentials")
            }
    finally:
        await dispose_engine(engine)
    assert versions == {"live": 0, "gone": 1, "purged": 2}
    for events in queued.values():
        assert sorted((e["workspace_id"], e["metadata"]["state"]) for e in events) == [
            ("gone", "deleted"),
            ("purged", "purged"),
        ]


async def test_the_resend_command_queues_the_current_states_again(
    workspaces_server: WorkspacesServer,
) -> None:
    server = workspaces_server
    ws_id = await server.team()
    await server.stub().DeleteWorkspace(
        pb.DeleteWorkspaceRequest(name=f"workspaces/{ws_id}"),
        metadata=as_user("alice", ws_id, OWNER),
    )
    before = len(await _outbox(server, "credentials"))
    env = {
        **os.environ,
        "RAILGUARD_DATABASE_URL": server.database_url,
        "RAILGUARD_LOG_LEVEL": "ERROR",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workspaces_service", "resend-lifecycle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "queued the lifecycle of 1 workspace(s)" in done.stdout
    for receiver in ("auth", "keys", "credentials"):
        events = await _outbox(server, receiver)
        assert len(events) == before + 1
        assert (events[-1]["workspace_id"], events[-1]["metadata"]) == (
            ws_id,
            {"state": "deleted", "version": "1"},
        )
        assert not events[-1]["sent"]  # no receiver answered: it waits for the servers' relays
