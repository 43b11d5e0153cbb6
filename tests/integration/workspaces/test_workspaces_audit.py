"""The audit log end to end: outbox → relay → hash chain; listing, verifying, tampering, purge."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import (
    AuditEvent,
    AuditOutbox,
    AuditRelay,
    GrpcAuditSink,
    create_engine,
    session_factory,
)
from servicekit.audit_grpc import event_to_proto
from servicekit.db import dispose_engine
from sqlalchemy import MetaData, text
from testkit import channel_as

from .conftest import ADMIN, OWNER, USER, WorkspacesServer, as_user, reason

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _event(ws_id: str, **metadata: str) -> AuditEvent:
    return AuditEvent.new(
        workspace_id=ws_id,
        actor="apiKey:k1",
        action="apiKey.create",
        target=f"workspaces/{ws_id}/apiKeys/k1",
        time=T,
        metadata=metadata,
    )


async def _list(
    server: WorkspacesServer, ws_id: str, user: str = "alice", role: int = OWNER
) -> list[pb.AuditEvent]:
    stub, events, token = server.stub(), [], ""
    while True:
        page = await stub.ListAuditEvents(
            pb.ListAuditEventsRequest(parent=f"workspaces/{ws_id}", page_size=3, page_token=token),
            metadata=as_user(user, ws_id, role),
        )
        events += page.audit_events
        if not (token := page.next_page_token):
            return events


async def _verify(server: WorkspacesServer, ws_id: str) -> pb.VerifyAuditChainResponse:
    return await server.stub().VerifyAuditChain(
        pb.VerifyAuditChainRequest(name=f"workspaces/{ws_id}"),
        metadata=as_user("alice", ws_id, OWNER),
    )


async def test_every_mutation_yields_exactly_one_event_even_when_the_relay_retries(
    workspaces_server: WorkspacesServer,
) -> None:
    server, stub = workspaces_server, workspaces_server.stub()
    ws_id = await server.team()  # create + 2 member adds
    name, owner = f"workspaces/{ws_id}", as_user("alice", ws_id, OWNER)
    await stub.UpdateWorkspace(
        pb.UpdateWorkspaceRequest(
            workspace=pb.Workspace(name=name, mfa_required=True),
            update_mask=field_mask_pb2.FieldMask(paths=["mfa_required"]),
        ),
        metadata=owner,
    )
    await stub.UpdateMember(
        pb.UpdateMemberRequest(
            member=pb.Member(name=f"{name}/members/carol", role=ADMIN),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=owner,
    )
    await stub.DeleteMember(pb.DeleteMemberRequest(name=f"{name}/members/carol"), metadata=owner)
    await stub.TransferOwnership(
        pb.TransferOwnershipRequest(name=name, new_owner=f"{name}/members/bob"), metadata=owner
    )
    bob = as_user("bob", ws_id, OWNER)
    await stub.DeleteWorkspace(pb.DeleteWorkspaceRequest(name=name), metadata=bob)
    await stub.UndeleteWorkspace(pb.UndeleteWorkspaceRequest(name=name), metadata=bob)
    assert await server.relay.drain() == 9
    # a relay that crashed after sending but before marking sends everything again
    async with server.engine.begin() as conn:
        await conn.execute(text("UPDATE workspaces_audit_outbox SET sent_at = NULL"))
    assert await server.relay.drain() == 9

    events = await _list(server, ws_id, "bob", OWNER)
    assert [e.action for e in reversed(events)] == [
        "workspace.create",
        "member.add",
        "member.add",
        "workspace.update",
        "member.update",
        "member.remove",
        "workspace.transferOwnership",
        "workspace.delete",
        "workspace.undelete",
    ]
    assert [e.sequence for e in events] == list(range(9, 0, -1))
    latest = events[0]
    assert (latest.actor, latest.client_ip, latest.request_id, latest.source) == (
        "user:bob",
        "198.51.100.9",
        "test-request",
        "workspaces",
    )
    assert latest.name == f"workspaces/{ws_id}/auditEvents/9" and latest.prev_hash == events[1].hash
    report = await _verify(server, ws_id)
    assert (report.ok, report.verified_events, report.head_sequence, report.head_hash) == (
        True,
        9,
        9,
        latest.hash,
    )


async def test_the_relay_runs_in_the_background(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    server.relay.start()
    ws_id = await server.team()
    for _ in range(200):
        if len(await _list(server, ws_id)) == 3:
            break
        await asyncio.sleep(0.02)
    assert len(await _list(server, ws_id)) == 3


async def test_tampering_with_a_stored_event_is_reported(
    workspaces_server: WorkspacesServer,
) -> None:
    server = workspaces_server
    ws_id = await server.team()
    await server.relay.drain()
    async with server.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            async with conn.begin_nested():
                await conn.execute(text("UPDATE audit_events SET actor = 'user:mallory'"))
    # an attacker able to drop the guard still cannot hide the edit
    async with server.engine.begin() as conn:
        if server.database_url.startswith("postgresql"):
            await conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            await conn.execute(text("DROP TRIGGER audit_events_no_update"))
        await conn.execute(
            text(
                "UPDATE audit_events SET actor = 'user:mallory' WHERE workspace_id = :w AND sequence = 2"
            ),
            {"w": ws_id},
        )
    report = await _verify(server, ws_id)
    assert (report.ok, report.first_broken_sequence, report.verified_events) == (False, 2, 1)


async def test_other_services_relay_through_the_rpc(
    workspaces_server: WorkspacesServer, tmp_path: Path
) -> None:
    server = workspaces_server
    ws_id = await server.team()
    await server.relay.drain()
    metadata = MetaData()
    outbox = AuditOutbox.define("keys", metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    async with sessions() as session:
        for i in range(3):
            await outbox.record(session, _event(ws_id, api_key_id=f"k{i}"))
        await session.commit()
    channel = channel_as("keys", server.pki, server.port)
    relay = AuditRelay(sessions, outbox, GrpcAuditSink(channel), batch_size=2)
    try:
        assert await relay.drain() == 3
        assert await relay.drain() == 0
    finally:
        await channel.close()
        await dispose_engine(engine)
    events = await _list(server, ws_id)
    assert [e.source for e in events[:3]] == ["keys"] * 3 and len(events) == 6


async def test_append_is_idempotent_and_refuses_secrets_and_strangers(
    workspaces_server: WorkspacesServer,
) -> None:
    server = workspaces_server
    ws_id = await server.team()
    keys = server.stub("keys")
    batch = pb.AppendAuditEventsRequest(events=[event_to_proto(_event(ws_id)) for _ in range(2)])
    assert (await keys.AppendAuditEvents(batch)).appended == 2
    again = await keys.AppendAuditEvents(batch)
    assert (again.appended, again.duplicates) == (0, 2)
    leaky = event_to_proto(_event(ws_id))
    leaky.metadata["api_key"] = "rg_live_x"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await keys.AppendAuditEvents(pb.AppendAuditEventsRequest(events=[leaky]))
    assert (err.value.code(), reason(err.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_AUDIT_EVENT",
    )
    assert "rg_live_x" not in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.stub("edge").AppendAuditEvents(batch)
    assert reason(err.value) == "CALLER_NOT_ALLOWED"


async def test_only_admins_and_owners_read_or_verify(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    ws_id = await server.team()
    await server.relay.drain()
    assert len(await _list(server, ws_id, "bob", ADMIN)) == 3
    stub = server.stub()
    parent = f"workspaces/{ws_id}"
    for md, why in (
        (as_user("carol", ws_id, USER), "ROLE_TOO_LOW"),
        (as_user("carol", ws_id, ADMIN), "ROLE_TOO_LOW"),
    ):
        for call in (
            stub.ListAuditEvents(pb.ListAuditEventsRequest(parent=parent), metadata=md),
            stub.VerifyAuditChain(pb.VerifyAuditChainRequest(name=parent), metadata=md),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.PERMISSION_DENIED, why)


async def test_concurrent_appends_keep_one_valid_chain(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    ws_id = await server.team()
    await server.relay.drain()
    events = [_event(ws_id, n=str(i)) for i in range(40)]
    results = await asyncio.gather(
        *(server.service.append_audit_events([e], "keys") for e in events),
        *(
            server.service.append_audit_events(events[:5], "keys") for _ in range(3)
        ),  # racing duplicates
    )
    assert sum(appended for appended, _ in results) == 40
    report = await _verify(server, ws_id)
    assert (report.ok, report.verified_events, report.head_sequence) == (True, 43, 43)


async def test_purge_keeps_a_tombstone_and_the_audit_log(
    workspaces_server: WorkspacesServer,
) -> None:
    server, stub = workspaces_server, workspaces_server.stub()
    ws_id = await server.team()
    await stub.DeleteWorkspace(
        pb.DeleteWorkspaceRequest(name=f"workspaces/{ws_id}"),
        metadata=as_user("alice", ws_id, OWNER),
    )
    assert await server.service.purge_expired(server.clock.advance(days=29)) == []
    assert await server.service.purge_expired(server.clock.advance(days=1)) == [ws_id]
    await server.relay.drain()
    async with server.engine.connect() as conn:
        members = (
            await conn.execute(
                text("SELECT count(*) FROM workspace_members WHERE workspace_id = :w"), {"w": ws_id}
            )
        ).scalar_one()
        tomb = (
            await conn.execute(
                text("SELECT display_name, purged_at FROM workspaces WHERE id = :w"), {"w": ws_id}
            )
        ).one()
        actions = (
            (
                await conn.execute(
                    text(
                        "SELECT action FROM audit_events WHERE workspace_id = :w ORDER BY sequence"
                    ),
                    {"w": ws_id},
                )
            )
            .scalars()
            .all()
        )
    assert members == 0 and tomb[0] == "Acme" and tomb[1] is not None
    assert actions[-2:] == ["workspace.delete", "workspace.purge"]
    view = await server.stub("keys").ResolveAccess(
        pb.ResolveAccessRequest(user_id="alice", workspace_id=ws_id)
    )
    assert not view.workspace_exists
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UndeleteWorkspace(
            pb.UndeleteWorkspaceRequest(name=f"workspaces/{ws_id}"),
            metadata=as_user("alice", ws_id, OWNER),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_purge_command_line(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    server.clock.set(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # long enough ago for any window
    ws_id = await server.team()
    await server.stub().DeleteWorkspace(
        pb.DeleteWorkspaceRequest(name=f"workspaces/{ws_id}"),
        metadata=as_user("alice", ws_id, OWNER),
    )
    env = {
        **os.environ,
        "RAILGUARD_DATABASE_URL": server.database_url,
        "RAILGUARD_LOG_LEVEL": "WARNING",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workspaces_service", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "purged 1 workspace(s)" in done.stdout
    async with server.engine.connect() as conn:
        purged_at = (
            await conn.execute(text("SELECT purged_at FROM workspaces WHERE id = :w"), {"w": ws_id})
        ).scalar_one()
        unsent = (
            await conn.execute(
                text("SELECT count(*) FROM workspaces_audit_outbox WHERE sent_at IS NULL")
            )
        ).scalar_one()
        actions = (
            (
                await conn.execute(
                    text(
                        "SELECT action FROM audit_events WHERE workspace_id = :w ORDER BY sequence"
                    ),
                    {"w": ws_id},
                )
            )
            .scalars()
            .all()
        )
    assert purged_at is not None
    # the job drains the shared outbox itself, so the purge is in the log without the server's relay
    assert unsent == 0 and actions[-1] == "workspace.purge" and len(actions) == 5


async def test_stopping_the_relay_ships_what_is_queued(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    # a relay that would not poll again for an hour: only its stop() can ship the events
    relay = AuditRelay(
        server.relay._sessions, server.relay._outbox, server.relay._sink, interval=3600
    )
    relay.start()
    await asyncio.sleep(0.05)  # its first pass found the outbox empty
    ws_id = await server.team()
    assert await _list(server, ws_id) == []
    await relay.stop()
    assert len(await _list(server, ws_id)) == 3
