"""Every RPC of the workspaces service through a real mTLS server: a happy and an unhappy path."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as pb

from .conftest import ADMIN, OWNER, USER, WorkspacesServer, as_user, reason


async def _fails(call: object, code: grpc.StatusCode, why: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert (err.value.code(), reason(err.value)) == (code, why)


async def test_create_workspace_is_idempotent_by_request_id(
    workspaces_server: WorkspacesServer,
) -> None:
    stub = workspaces_server.stub()
    req = pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name="Acme"), request_id="r-1")
    first = await stub.CreateWorkspace(req, metadata=as_user("alice"))
    again = await stub.CreateWorkspace(req, metadata=as_user("alice"))
    assert first.name == again.name and first.retention_days == 30
    bad = pb.CreateWorkspaceRequest(
        workspace=pb.Workspace(display_name="Acme"), request_id="no spaces"
    )
    await _fails(
        stub.CreateWorkspace(bad, metadata=as_user("alice")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST_ID",
    )


async def test_get_workspace_of_another_workspace_is_not_found(
    workspaces_server: WorkspacesServer,
) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    got = await stub.GetWorkspace(
        pb.GetWorkspaceRequest(name=f"workspaces/{ws_id}"), metadata=as_user("carol", ws_id, USER)
    )
    assert got.caller_role == USER
    # authorised for another workspace than the one named
    await _fails(
        stub.GetWorkspace(
            pb.GetWorkspaceRequest(name=f"workspaces/{ws_id}"),
            metadata=as_user("dave", "other", USER),
        ),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    # the edge let dave through, but he is no member
    await _fails(
        stub.GetWorkspace(
            pb.GetWorkspaceRequest(name=f"workspaces/{ws_id}"),
            metadata=as_user("dave", ws_id, USER),
        ),
        grpc.StatusCode.NOT_FOUND,
        "WORKSPACE_NOT_FOUND",
    )


async def test_list_workspaces_pages_and_refuses_foreign_tokens(
    workspaces_server: WorkspacesServer,
) -> None:
    stub = workspaces_server.stub()
    for name in ("A", "B", "C"):
        await stub.CreateWorkspace(
            pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name=name)),
            metadata=as_user("alice"),
        )
    page = await stub.ListWorkspaces(
        pb.ListWorkspacesRequest(page_size=2), metadata=as_user("alice")
    )
    rest = await stub.ListWorkspaces(
        pb.ListWorkspacesRequest(page_size=2, page_token=page.next_page_token),
        metadata=as_user("alice"),
    )
    assert len(page.workspaces) == 2 and len(rest.workspaces) == 1 and not rest.next_page_token
    await _fails(
        stub.ListWorkspaces(
            pb.ListWorkspacesRequest(page_token=page.next_page_token), metadata=as_user("bob")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


async def test_a_page_of_workspaces_is_never_cut_short_by_deleted_ones_left_out(
    workspaces_server: WorkspacesServer,
) -> None:
    """bob is Admin of deleted workspaces (never listed to him) and Owner of live ones: with
    show_deleted, paging walks every live one; leaving rows out after the read would end the
    listing early wherever a page's read held two or more of the deleted ones."""
    stub = workspaces_server.stub()
    mine = set()
    for i in range(10):
        ws_id = await workspaces_server.team()  # alice Owner, bob Admin
        await stub.DeleteWorkspace(
            pb.DeleteWorkspaceRequest(name=f"workspaces/{ws_id}"),
            metadata=as_user("alice", ws_id, OWNER),
        )
        own = await stub.CreateWorkspace(
            pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name=f"B{i}")),
            metadata=as_user("bob"),
        )
        mine.add(own.name)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListWorkspaces(
            pb.ListWorkspacesRequest(page_size=3, page_token=token, show_deleted=True),
            metadata=as_user("bob"),
        )
        seen += [ws.name for ws in page.workspaces]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(mine)


async def test_update_workspace_admin_settings_but_not_plan(
    workspaces_server: WorkspacesServer,
) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    name = f"workspaces/{ws_id}"
    ws = await stub.UpdateWorkspace(
        pb.UpdateWorkspaceRequest(
            workspace=pb.Workspace(name=name, display_name="Renamed", retention_days=7),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name", "retention_days"]),
        ),
        metadata=as_user("bob", ws_id, ADMIN),
    )
    assert (ws.display_name, ws.retention_days) == ("Renamed", 7)
    await _fails(
        stub.UpdateWorkspace(
            pb.UpdateWorkspaceRequest(
                workspace=pb.Workspace(name=name, plan=pb.PLAN_TEAM),
                update_mask=field_mask_pb2.FieldMask(paths=["plan"]),
            ),
            metadata=as_user("bob", ws_id, ADMIN),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "OWNER_REQUIRED",
    )


async def test_delete_workspace_needs_the_owner_role(workspaces_server: WorkspacesServer) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    req = pb.DeleteWorkspaceRequest(name=f"workspaces/{ws_id}")
    # the servicer's rule check refuses an Admin principal...
    await _fails(
        stub.DeleteWorkspace(req, metadata=as_user("bob", ws_id, ADMIN)),
        grpc.StatusCode.PERMISSION_DENIED,
        "ROLE_TOO_LOW",
    )
    # ...and the use case refuses a principal claiming a role its member row does not have
    await _fails(
        stub.DeleteWorkspace(req, metadata=as_user("bob", ws_id, OWNER)),
        grpc.StatusCode.PERMISSION_DENIED,
        "OWNER_REQUIRED",
    )
    ws = await stub.DeleteWorkspace(req, metadata=as_user("alice", ws_id, OWNER))
    assert (
        ws.state == pb.WORKSPACE_STATE_DELETED
        and ws.purge_time.ToDatetime() > ws.delete_time.ToDatetime()
    )


async def test_undelete_within_the_window_only(workspaces_server: WorkspacesServer) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    md = as_user("alice", ws_id, OWNER)
    name = f"workspaces/{ws_id}"
    await _fails(
        stub.UndeleteWorkspace(pb.UndeleteWorkspaceRequest(name=name), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WORKSPACE_NOT_DELETED",
    )
    await stub.DeleteWorkspace(pb.DeleteWorkspaceRequest(name=name), metadata=md)
    workspaces_server.clock.advance(days=29)
    assert (
        await stub.UndeleteWorkspace(pb.UndeleteWorkspaceRequest(name=name), metadata=md)
    ).state == pb.WORKSPACE_STATE_ACTIVE
    await stub.DeleteWorkspace(pb.DeleteWorkspaceRequest(name=name), metadata=md)
    workspaces_server.clock.advance(days=30)
    await _fails(
        stub.UndeleteWorkspace(pb.UndeleteWorkspaceRequest(name=name), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RETENTION_EXPIRED",
    )


async def test_list_members_pages_and_refuses_a_deleted_workspace(
    workspaces_server: WorkspacesServer,
) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    parent = f"workspaces/{ws_id}"
    page = await stub.ListMembers(
        pb.ListMembersRequest(parent=parent, page_size=2), metadata=as_user("carol", ws_id, USER)
    )
    rest = await stub.ListMembers(
        pb.ListMembersRequest(parent=parent, page_size=2, page_token=page.next_page_token),
        metadata=as_user("carol", ws_id, USER),
    )
    assert [m.name.rsplit("/", 1)[1] for m in [*page.members, *rest.members]] == [
        "alice",
        "bob",
        "carol",
    ]
    await stub.DeleteWorkspace(
        pb.DeleteWorkspaceRequest(name=parent), metadata=as_user("alice", ws_id, OWNER)
    )
    await _fails(
        stub.ListMembers(
            pb.ListMembersRequest(parent=parent), metadata=as_user("carol", ws_id, USER)
        ),
        grpc.StatusCode.NOT_FOUND,
        "WORKSPACE_DELETED",
    )


async def test_create_member_refuses_unknown_and_duplicate_users(
    workspaces_server: WorkspacesServer,
) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    parent, md = f"workspaces/{ws_id}", as_user("bob", ws_id, ADMIN)
    added = await stub.CreateMember(
        pb.CreateMemberRequest(
            parent=parent, member=pb.Member(email="dave@example.com", role=USER)
        ),
        metadata=md,
    )
    assert added.name == f"{parent}/members/dave"
    await _fails(
        stub.CreateMember(
            pb.CreateMemberRequest(
                parent=parent, member=pb.Member(email="eve@example.com", role=USER)
            ),
            metadata=md,
        ),
        grpc.StatusCode.NOT_FOUND,
        "USER_NOT_FOUND",
    )
    await _fails(
        stub.CreateMember(
            pb.CreateMemberRequest(
                parent=parent, member=pb.Member(email="dave@example.com", role=USER)
            ),
            metadata=md,
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "MEMBER_EXISTS",
    )
    await _fails(
        stub.CreateMember(
            pb.CreateMemberRequest(
                parent=parent, member=pb.Member(email="x@example.com", role=OWNER)
            ),
            metadata=md,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "OWNER_REQUIRED",
    )


async def test_update_member_never_demotes_the_last_owner(
    workspaces_server: WorkspacesServer,
) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    md = as_user("alice", ws_id, OWNER)
    mask = field_mask_pb2.FieldMask(paths=["role"])
    m = await stub.UpdateMember(
        pb.UpdateMemberRequest(
            member=pb.Member(name=f"workspaces/{ws_id}/members/carol", role=ADMIN), update_mask=mask
        ),
        metadata=md,
    )
    assert m.role == ADMIN
    await _fails(
        stub.UpdateMember(
            pb.UpdateMemberRequest(
                member=pb.Member(name=f"workspaces/{ws_id}/members/alice", role=ADMIN),
                update_mask=mask,
            ),
            metadata=md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "LAST_OWNER",
    )


async def test_delete_member_keeps_the_last_owner(workspaces_server: WorkspacesServer) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    await stub.DeleteMember(
        pb.DeleteMemberRequest(name=f"workspaces/{ws_id}/members/carol"),
        metadata=as_user("bob", ws_id, ADMIN),
    )
    await _fails(
        stub.DeleteMember(
            pb.DeleteMemberRequest(name=f"workspaces/{ws_id}/members/alice"),
            metadata=as_user("alice", ws_id, OWNER),
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "LAST_OWNER",
    )
    await _fails(
        stub.DeleteMember(
            pb.DeleteMemberRequest(name=f"workspaces/{ws_id}/members/bob"),
            metadata=as_user("carol", ws_id, USER),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "ROLE_TOO_LOW",
    )


async def test_transfer_ownership(workspaces_server: WorkspacesServer) -> None:
    ws_id = await workspaces_server.team()
    stub = workspaces_server.stub()
    name, md = f"workspaces/{ws_id}", as_user("alice", ws_id, OWNER)
    await _fails(
        stub.TransferOwnership(
            pb.TransferOwnershipRequest(name=name, new_owner="workspaces/other/members/bob"),
            metadata=md,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    )
    await _fails(
        stub.TransferOwnership(
            pb.TransferOwnershipRequest(name=name, new_owner=f"{name}/members/dave"), metadata=md
        ),
        grpc.StatusCode.NOT_FOUND,
        "MEMBER_NOT_FOUND",
    )
    ws = await stub.TransferOwnership(
        pb.TransferOwnershipRequest(name=name, new_owner=f"{name}/members/bob"), metadata=md
    )
    assert ws.caller_role == ADMIN


async def test_resolve_access_is_internal_only(workspaces_server: WorkspacesServer) -> None:
    ws_id = await workspaces_server.team()
    view = await workspaces_server.stub("keys").ResolveAccess(
        pb.ResolveAccessRequest(user_id="bob", workspace_id=ws_id)
    )
    assert view.workspace_exists and view.member and view.role == ADMIN
    missing = await workspaces_server.stub("keys").ResolveAccess(
        pb.ResolveAccessRequest(user_id="bob", workspace_id="nope")
    )
    assert not missing.workspace_exists
    await _fails(
        workspaces_server.stub("outsider").ResolveAccess(
            pb.ResolveAccessRequest(user_id="bob", workspace_id=ws_id)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "CALLER_NOT_ALLOWED",
    )
