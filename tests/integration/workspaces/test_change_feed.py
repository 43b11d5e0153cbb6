"""The workspaces service records every change the edge decides from, in the change's transaction.

Topics (servicekit.changefeed, docs/architecture.md): ``membership`` "<workspace>/<user>" for a
member created, re-roled or removed; ``workspace`` "<workspace>" for a workspace created, updated
(plan, mfaRequired, verifiedEmailRequired…), deleted, restored or purged.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import session_factory
from servicekit.usecase import Collaborators
from sqlalchemy import func, select
from testkit import FakeClock
from workspaces_service.accounts import AccountService
from workspaces_service.adapters.invitations import InvitationsUnitOfWork
from workspaces_service.adapters.tables import CHANGE_LOG

from tests.integration.workspaces.conftest import ADMIN, OWNER, USER, WorkspacesServer, as_user


async def _changes(server: WorkspacesServer, after: int = 0) -> list[tuple[str, str]]:
    async with server.engine.connect() as conn:
        t = CHANGE_LOG.table.c
        rows = await conn.execute(select(t.topic, t.key).where(t.id > after).order_by(t.id))
        return [(r.topic, r.key) for r in rows]


async def _newest(server: WorkspacesServer) -> int:
    async with server.engine.connect() as conn:
        value = (await conn.execute(select(func.max(CHANGE_LOG.table.c.id)))).scalar()
        return int(value or 0)


async def test_memberships_and_workspaces_are_recorded(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    ws_id = await server.team()
    assert await _changes(server) == [
        ("workspace", ws_id),
        ("membership", f"{ws_id}/alice"),
        ("membership", f"{ws_id}/bob"),
        ("membership", f"{ws_id}/carol"),
    ]
    stub, owner, name = server.stub(), as_user("alice", ws_id, OWNER), f"workspaces/{ws_id}"

    mark = await _newest(server)
    await stub.UpdateMember(
        pb.UpdateMemberRequest(
            member=pb.Member(name=f"{name}/members/carol", role=ADMIN),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=owner,
    )
    assert await _changes(server, mark) == [("membership", f"{ws_id}/carol")]

    mark = await _newest(server)
    await stub.DeleteMember(pb.DeleteMemberRequest(name=f"{name}/members/carol"), metadata=owner)
    assert await _changes(server, mark) == [("membership", f"{ws_id}/carol")]

    for path, value in (
        ("mfa_required", pb.Workspace(name=name, mfa_required=True)),
        ("verified_email_required", pb.Workspace(name=name, verified_email_required=True)),
    ):
        mark = await _newest(server)
        await stub.UpdateWorkspace(
            pb.UpdateWorkspaceRequest(
                workspace=value, update_mask=field_mask_pb2.FieldMask(paths=[path])
            ),
            metadata=owner,
        )
        assert await _changes(server, mark) == [("workspace", ws_id)], path

    mark = await _newest(server)
    await stub.TransferOwnership(
        pb.TransferOwnershipRequest(name=name, new_owner=f"{name}/members/bob"), metadata=owner
    )
    assert sorted(await _changes(server, mark)) == [
        ("membership", f"{ws_id}/alice"),
        ("membership", f"{ws_id}/bob"),
    ]
    bob = as_user("bob", ws_id, OWNER)
    for call in (stub.DeleteWorkspace, stub.UndeleteWorkspace, stub.DeleteWorkspace):
        mark = await _newest(server)
        request_type = (
            pb.DeleteWorkspaceRequest
            if call is stub.DeleteWorkspace
            else pb.UndeleteWorkspaceRequest
        )
        await call(request_type(name=name), metadata=bob)
        assert await _changes(server, mark) == [("workspace", ws_id)]
    mark = await _newest(server)
    assert await server.service.purge_expired(server.clock.advance(days=30)) == [ws_id]
    # its members and its row: the same topic and key, told twice (harmless to the edge)
    assert set(await _changes(server, mark)) == {("workspace", ws_id)}


async def test_a_refused_change_records_nothing(workspaces_server: WorkspacesServer) -> None:
    server = workspaces_server
    ws_id = await server.team()
    mark = await _newest(server)
    with pytest.raises(grpc.aio.AioRpcError):
        await server.stub().DeleteMember(
            pb.DeleteMemberRequest(name=f"workspaces/{ws_id}/members/alice"),
            metadata=as_user("carol", ws_id, USER),
        )
    assert await _changes(server, mark) == []


async def test_removing_an_accounts_memberships_records_each(
    workspaces_server: WorkspacesServer,
) -> None:
    server = workspaces_server
    first = await server.team()
    second = await server.team()
    sessions = session_factory(server.engine)
    accounts = AccountService(
        Collaborators(uow=lambda: InvitationsUnitOfWork(sessions), clock=FakeClock())
    )
    mark = await _newest(server)
    removal = await accounts.remove_user("carol")
    assert removal.removed == 2
    assert sorted(await _changes(server, mark)) == sorted(
        [("membership", f"{first}/carol"), ("membership", f"{second}/carol")]
    )
