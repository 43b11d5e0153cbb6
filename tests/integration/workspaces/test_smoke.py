from __future__ import annotations

import grpc
import pytest
from railguard.access.v1 import access_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import Principal
from testkit import channel_without_client_cert, principal_metadata
from testkit.fakes import reason as _reason

from .conftest import WorkspacesServer


async def test_create_then_get(workspaces_server: WorkspacesServer) -> None:
    stub = workspaces_server.stub()
    alice = Principal(user_id="alice")
    ws = await stub.CreateWorkspace(
        pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name="Acme")),
        metadata=principal_metadata(alice),
    )
    assert ws.caller_role == access_pb2.ROLE_OWNER
    ws_id = ws.name.split("/")[1]
    got = await stub.GetWorkspace(
        pb.GetWorkspaceRequest(name=ws.name),
        metadata=principal_metadata(
            Principal(user_id="alice", workspace_id=ws_id, role=access_pb2.ROLE_OWNER)
        ),
    )
    assert got.display_name == "Acme"


async def test_bad_input_is_invalid_argument(workspaces_server: WorkspacesServer) -> None:
    stub = workspaces_server.stub()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateWorkspace(
            pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name="")),
            metadata=principal_metadata(Principal(user_id="alice")),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(err.value) == "INVALID_DISPLAY_NAME"


async def test_caller_identity_is_enforced(workspaces_server: WorkspacesServer) -> None:
    outsider = workspaces_server.stub("outsider")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await outsider.ListWorkspaces(
            pb.ListWorkspacesRequest(), metadata=principal_metadata(Principal(user_id="a"))
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _reason(err.value) == "CALLER_NOT_ALLOWED"


async def test_call_without_client_certificate_is_refused(
    workspaces_server: WorkspacesServer,
) -> None:
    from railguard.workspaces.v1 import workspaces_service_pb2_grpc

    channel = channel_without_client_cert(workspaces_server.pki, workspaces_server.port)
    stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListWorkspaces(pb.ListWorkspacesRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    await channel.close()
