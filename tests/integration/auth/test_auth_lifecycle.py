"""Workspace life in the auth service (issue 8): a deleted workspace's deployment PINs stop (the
public verify answering exactly like a wrong PIN), a restore brings them back, and a purge
deletes their hashes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import grpc
import pytest
from railguard.access.v1 import access_pb2
from railguard.auth.v1 import auth_service_pb2 as pb
from railguard.workspaces.v1 import lifecycle_pb2
from servicekit.db import dispose_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import AuthServer, as_user, error_info

ACTIVE = lifecycle_pb2.LIFECYCLE_STATE_ACTIVE
DELETED = lifecycle_pb2.LIFECYCLE_STATE_DELETED
PURGED = lifecycle_pb2.LIFECYCLE_STATE_PURGED
PIN = "73914062"  # 8 digits: within any PIN floor


def _admin(workspace: str = "w1") -> Any:
    return as_user("admin", "s1", workspace_id=workspace, role=access_pb2.ROLE_ADMIN, aal="aal2")


def event(state: int, version: int, ws: str = "w1") -> lifecycle_pb2.WorkspaceLifecycleEvent:
    msg = lifecycle_pb2.WorkspaceLifecycleEvent(
        id=str(uuid.uuid4()),
        workspace_id=ws,
        state=state,  # type: ignore[arg-type]
        version=version,
    )
    msg.event_time.FromDatetime(dt.datetime.now(dt.UTC))
    return msg


async def apply(srv: AuthServer, *events: lifecycle_pb2.WorkspaceLifecycleEvent) -> tuple[int, int]:
    reply = await srv.stub("workspaces").ApplyWorkspaceLifecycle(
        pb.ApplyWorkspaceLifecycleRequest(events=list(events))
    )
    return reply.applied, reply.skipped


async def _verify(srv: AuthServer, ws: str = "w1", pin: str = PIN) -> Any:
    return await srv.stub().VerifyDeploymentPin(
        pb.VerifyDeploymentPinRequest(name=f"workspaces/{ws}/deployments/d1", pin=pin)
    )


async def _fails(call: Any) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return error_info(err.value)


async def _pins(srv: AuthServer, ws: str) -> int:
    engine = create_async_engine(srv.settings.database_url)
    try:
        async with engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM deployment_pins WHERE workspace_id = :w"),
                        {"w": ws},
                    )
                ).scalar_one()
            )
    finally:
        await dispose_engine(engine)


async def test_a_deleted_workspace_stops_its_pins_and_a_purge_deletes_them(
    auth_server: AuthServer,
) -> None:
    srv = auth_server
    stub = srv.stub()
    for ws in ("w1", "w2"):
        await stub.SetDeploymentPin(
            pb.SetDeploymentPinRequest(name=f"workspaces/{ws}/deployments/d1/pin", pin=PIN),
            metadata=_admin(ws),
        )
    assert (await _verify(srv)).access_token

    assert await apply(srv, event(DELETED, 1)) == (1, 0)
    dead = await _fails(_verify(srv))
    wrong = await _fails(_verify(srv, "w2", "00000000"))
    assert dead == wrong  # the right PIN of a deleted workspace ≡ a wrong PIN
    assert dead[:2] == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_PIN")
    for call in (
        stub.GetDeploymentPin(
            pb.GetDeploymentPinRequest(name="workspaces/w1/deployments/d1/pin"), metadata=_admin()
        ),
        stub.SetDeploymentPin(
            pb.SetDeploymentPinRequest(name="workspaces/w1/deployments/d1/pin", pin=PIN),
            metadata=_admin(),
        ),
    ):
        code, reason, _ = await _fails(call)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_DELETED")
    assert (await _verify(srv, "w2")).access_token  # another workspace is untouched

    assert await apply(srv, event(ACTIVE, 2)) == (1, 0)
    assert (await _verify(srv)).access_token

    assert await apply(srv, event(DELETED, 3), event(PURGED, 4), event(PURGED, 4)) == (2, 1)
    assert await _pins(srv, "w1") == 0
    assert await _pins(srv, "w2") == 1
    assert (await _fails(_verify(srv)))[:2] == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_PIN")


@pytest.mark.parametrize("identity", ["edge", "keys", "credentials", "outsider"])
async def test_only_the_workspaces_service_may_apply_lifecycle_events(
    auth_server: AuthServer, identity: str
) -> None:
    code, reason, _ = await _fails(
        auth_server.stub(identity).ApplyWorkspaceLifecycle(
            pb.ApplyWorkspaceLifecycleRequest(events=[event(PURGED, 2)])
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
