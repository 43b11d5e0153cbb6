"""StreamAuditEvents: the backlog after a resume point, then live events; access while streaming."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import AuditEvent
from servicekit.audit_grpc import event_to_proto

from .conftest import ADMIN, OWNER, USER, WorkspacesServer, as_user, reason

WAIT = 5.0


def _stream(
    server: WorkspacesServer, ws_id: str, user: str, role: int, after: int = 0
) -> grpc.aio.UnaryStreamCall[pb.StreamAuditEventsRequest, pb.AuditEvent]:
    return server.stub().StreamAuditEvents(
        pb.StreamAuditEventsRequest(parent=f"workspaces/{ws_id}", after_sequence=after),
        metadata=as_user(user, ws_id, role),
    )


async def _next(
    call: grpc.aio.UnaryStreamCall[pb.StreamAuditEventsRequest, pb.AuditEvent],
) -> pb.AuditEvent:
    item = await asyncio.wait_for(call.read(), WAIT)
    assert isinstance(item, pb.AuditEvent), item
    return item


async def test_backlog_then_live_events_then_resume(workspaces_server: WorkspacesServer) -> None:
    server, stub = workspaces_server, workspaces_server.stub()
    ws_id = await server.team()  # create + 2 member adds
    await server.relay.drain()
    call = _stream(server, ws_id, "bob", ADMIN)
    backlog = [await _next(call) for _ in range(3)]
    assert [e.sequence for e in backlog] == [1, 2, 3]
    assert [e.action for e in backlog] == ["workspace.create", "member.add", "member.add"]
    assert backlog[0].name == f"workspaces/{ws_id}/auditEvents/1"

    # a change made while the stream is open arrives on it
    await stub.CreateMember(
        pb.CreateMemberRequest(
            parent=f"workspaces/{ws_id}", member=pb.Member(email="dave@example.com", role=USER)
        ),
        metadata=as_user("alice", ws_id, OWNER),
    )
    await server.relay.drain()
    live = await _next(call)
    assert (live.sequence, live.action, live.target) == (
        4,
        "member.add",
        f"workspaces/{ws_id}/members/dave",
    )
    assert live.prev_hash == backlog[-1].hash  # chained onto the log

    # so does an event relayed by another service over AppendAuditEvents
    relayed = AuditEvent.new(
        workspace_id=ws_id,
        actor="apiKey:k1",
        action="apiKey.create",
        target=f"workspaces/{ws_id}/apiKeys/k1",
        time=server.clock.now(),
    )
    await server.stub("keys").AppendAuditEvents(
        pb.AppendAuditEventsRequest(events=[event_to_proto(relayed)])
    )
    assert (await _next(call)).id == relayed.id
    call.cancel()

    # resuming after sequence 3 starts at 4; after the head, nothing until something new
    resumed = _stream(server, ws_id, "alice", OWNER, after=3)
    assert [(await _next(resumed)).sequence for _ in range(2)] == [4, 5]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(resumed.read(), 0.7)
    resumed.cancel()


async def test_other_replicas_appends_are_found_by_polling(
    workspaces_server: WorkspacesServer,
) -> None:
    """An append this process did not make (another replica) is picked up by the poll."""
    server = workspaces_server
    ws_id = await server.team()
    await server.relay.drain()
    call = _stream(server, ws_id, "bob", ADMIN, after=3)
    signal = server.service._appended
    server.service._appended = asyncio.Event()  # the in-process wake-up is lost
    event = AuditEvent.new(
        workspace_id=ws_id,
        actor="system",
        action="apiKey.create",
        target="t",
        time=server.clock.now(),
    )
    await server.service.append_audit_events([event], "keys")
    assert not signal.is_set()
    assert (await _next(call)).id == event.id
    call.cancel()


@pytest.mark.parametrize(
    ("user", "role", "code", "why"),
    [
        ("carol", USER, grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW"),
        ("carol", ADMIN, grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW"),  # a stale claim
        ("dave", ADMIN, grpc.StatusCode.NOT_FOUND, "WORKSPACE_NOT_FOUND"),  # not a member
    ],
)
async def test_non_admins_are_refused(
    workspaces_server: WorkspacesServer, user: str, role: int, code: grpc.StatusCode, why: str
) -> None:
    ws_id = await workspaces_server.team()
    call = _stream(workspaces_server, ws_id, user, role)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(call.read(), WAIT)
    assert err.value.code() == code
    if role == USER:
        # the interceptor refuses a User claim before the use case runs
        return
    assert reason(err.value) == why


async def test_only_the_edge_may_call_it_and_only_for_the_authorised_workspace(
    workspaces_server: WorkspacesServer,
) -> None:
    server = workspaces_server
    ws_id = await server.team()
    other = await server.team()
    refused = server.stub("keys").StreamAuditEvents(
        pb.StreamAuditEventsRequest(parent=f"workspaces/{ws_id}"),
        metadata=as_user("bob", ws_id, ADMIN),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(refused.read(), WAIT)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # authorised for one workspace, asking for another
    crossed = server.stub().StreamAuditEvents(
        pb.StreamAuditEventsRequest(parent=f"workspaces/{other}"),
        metadata=as_user("bob", ws_id, ADMIN),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(crossed.read(), WAIT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    negative = _stream(server, ws_id, "bob", ADMIN, after=-1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(negative.read(), WAIT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_demoted_reader_gets_no_further_events(
    workspaces_server: WorkspacesServer,
) -> None:
    server, stub = workspaces_server, workspaces_server.stub()
    ws_id = await server.team()
    await server.relay.drain()
    call = _stream(server, ws_id, "bob", ADMIN, after=3)
    await stub.UpdateMember(
        pb.UpdateMemberRequest(
            member=pb.Member(name=f"workspaces/{ws_id}/members/bob", role=USER),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=as_user("alice", ws_id, OWNER),
    )
    await server.relay.drain()
    # the demotion's own event is not sent: the role is re-read before each batch
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(call.read(), WAIT)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(err.value) == "ROLE_TOO_LOW"
