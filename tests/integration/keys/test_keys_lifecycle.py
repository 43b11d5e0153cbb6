"""Workspace life in the keys service (issue 8): reads refused in a deleted workspace like
mutations already were, and a purge event that destroys every key digest of the workspace while
the rows stay as tombstones."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
from railguard.keys.v1 import keys_service_pb2 as pb
from railguard.workspaces.v1 import lifecycle_pb2
from sqlalchemy import text

from .conftest import KeysServer
from .test_keys_api import _create, _fails, _verify

DELETED = lifecycle_pb2.LIFECYCLE_STATE_DELETED
PURGED = lifecycle_pb2.LIFECYCLE_STATE_PURGED


def event(state: int, version: int, ws: str = "ws_a") -> lifecycle_pb2.WorkspaceLifecycleEvent:
    msg = lifecycle_pb2.WorkspaceLifecycleEvent(
        id=str(uuid.uuid4()),
        workspace_id=ws,
        state=state,  # type: ignore[arg-type]
        version=version,
    )
    msg.event_time.FromDatetime(dt.datetime.now(dt.UTC))
    return msg


async def apply(ks: KeysServer, *events: lifecycle_pb2.WorkspaceLifecycleEvent) -> tuple[int, int]:
    reply = await ks.stub("workspaces").ApplyWorkspaceLifecycle(
        pb.ApplyWorkspaceLifecycleRequest(events=list(events))
    )
    return reply.applied, reply.skipped


async def test_a_deleted_workspace_refuses_reads_too(keys_server: KeysServer) -> None:
    ks = keys_server
    created = await _create(ks)
    ks.workspaces.deleted.add("ws_a")
    await _fails(
        ks.stub().GetApiKey(
            pb.GetApiKeyRequest(name=created.api_key.name), metadata=ks.md("alice")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WORKSPACE_DELETED",
    )
    await _fails(
        ks.stub().ListApiKeys(
            pb.ListApiKeysRequest(parent="workspaces/ws_a"), metadata=ks.md("alice")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WORKSPACE_DELETED",
    )


async def test_a_purge_destroys_every_digest_of_the_workspace_and_keeps_tombstones(
    keys_server: KeysServer,
) -> None:
    ks = keys_server
    live = await _create(ks)
    rotated = await _create(ks, user="bob")
    await ks.stub().RotateApiKey(
        pb.RotateApiKeyRequest(name=rotated.api_key.name), metadata=ks.md("bob")
    )
    kept = await _create(ks, ws="ws_b")
    assert await apply(ks, event(DELETED, 1), event(PURGED, 2)) == (2, 0)
    async with ks.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT secret_digest, previous_digest, purged_at, deleted_at, name "
                    "FROM api_keys WHERE workspace_id = 'ws_a'"
                )
            )
        ).all()
        others = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM api_keys WHERE workspace_id = 'ws_b' "
                    "AND secret_digest IS NOT NULL"
                )
            )
        ).scalar_one()
    assert len(rows) == 2
    assert all(
        r[0] is None and r[1] is None and r[2] is not None and r[3] is not None for r in rows
    )
    assert {r[4] for r in rows} == {"CI"}
    assert others == 1
    # the secrets no longer verify; another workspace's key still does
    ks.workspaces.deleted.discard("ws_a")  # even were the workspace answered as alive
    for key in (live.key, rotated.key):
        await _fails(_verify(ks, key), grpc.StatusCode.UNAUTHENTICATED)
    assert (await _verify(ks, kept.key)).workspace_id == "ws_b"
    # replays change nothing
    assert await apply(ks, event(PURGED, 2)) == (0, 1)
    [purge] = [e for e in await ks.audit() if e.action == "apiKey.purgeWorkspace"]
    assert purge.workspace_id == "ws_a" and dict(purge.metadata) == {
        "api_keys": "2",
        "lifecycle_version": "2",
    }


@pytest.mark.parametrize("identity", ["edge", "credentials", "auth", "outsider"])
async def test_only_the_workspaces_service_may_apply_lifecycle_events(
    keys_server: KeysServer, identity: str
) -> None:
    await _fails(
        keys_server.stub(identity).ApplyWorkspaceLifecycle(
            pb.ApplyWorkspaceLifecycleRequest(events=[event(PURGED, 2)])
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "CALLER_NOT_ALLOWED",
    )
