"""Workspace life in the credentials service (issue 8, hole 3), through the real server: the
lifecycle events the workspaces service relays, refusals once a workspace is deleted (the public
hook and UseCredential included), and a purge that destroys every ciphertext and token hash of
the workspace while the rows stay as tombstones."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import grpc
import pytest
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb
from railguard.workspaces.v1 import lifecycle_pb2

from .conftest import CredentialsServer, md
from .test_credentials_api import OPENAI, create, fails
from .test_credentials_security import execute
from .test_webhooks import create_trigger, deliver, trigger_id

USER, ADMIN = access_pb2.ROLE_USER, access_pb2.ROLE_ADMIN
ACTIVE = lifecycle_pb2.LIFECYCLE_STATE_ACTIVE
DELETED = lifecycle_pb2.LIFECYCLE_STATE_DELETED
PURGED = lifecycle_pb2.LIFECYCLE_STATE_PURGED

# one key-manager backend is enough here: nothing below depends on how values are sealed
pytestmark = pytest.mark.parametrize("backend", ["local"])


def event(
    state: int, version: int, ws: str = "ws_a", event_id: str = ""
) -> lifecycle_pb2.WorkspaceLifecycleEvent:
    msg = lifecycle_pb2.WorkspaceLifecycleEvent(
        id=event_id or str(uuid.uuid4()), workspace_id=ws, state=state, version=version
    )  # type: ignore[arg-type]
    msg.event_time.FromDatetime(dt.datetime.now(dt.UTC))
    return msg


async def apply(
    srv: CredentialsServer, *events: lifecycle_pb2.WorkspaceLifecycleEvent
) -> tuple[int, int]:
    reply = await srv.stub("workspaces").ApplyWorkspaceLifecycle(
        pb.ApplyWorkspaceLifecycleRequest(events=list(events))
    )
    return reply.applied, reply.skipped


async def test_a_deleted_workspace_refuses_every_call_and_a_restore_brings_it_back(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    credential = await create(srv)
    trigger = await create_trigger(srv)
    hook_id = trigger_id(trigger.webhook_trigger.name)
    assert (await deliver(srv, hook_id, trigger.token)).delivery_id

    assert await apply(srv, event(DELETED, 1)) == (1, 0)

    stub = srv.stub()
    refused = [
        stub.GetCredential(pb.GetCredentialRequest(name=credential.name), metadata=md()),
        stub.ListCredentials(
            pb.ListCredentialsRequest(parent="workspaces/ws_a"), metadata=md(role=USER)
        ),
        stub.CreateWebhookTrigger(
            pb.CreateWebhookTriggerRequest(
                parent="workspaces/ws_a", webhook_trigger=pb.WebhookTrigger(display_name="x")
            ),
            metadata=md(),
        ),
        stub.RotateWebhookTriggerToken(
            pb.RotateWebhookTriggerTokenRequest(name=trigger.webhook_trigger.name), metadata=md()
        ),
        stub.DeleteCredential(pb.DeleteCredentialRequest(name=credential.name), metadata=md()),
        srv.stub("runtime").UseCredential(
            pb.UseCredentialRequest(name=credential.name), metadata=md(role=USER)
        ),
    ]
    for call in refused:
        code, reason, _ = await fails(call)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_DELETED")
    code, reason, _ = await fails(create(srv))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_DELETED")

    # the public hook: exactly the answer an unknown trigger gets
    dead = await fails(deliver(srv, hook_id, trigger.token))
    unknown = await fails(deliver(srv, "no_such_trigger", trigger.token))
    assert dead == unknown == (grpc.StatusCode.NOT_FOUND, "WEBHOOK_TRIGGER_NOT_FOUND", [])

    # another workspace is untouched
    other = await create(srv, ws="ws_b")
    assert other.masked_value

    assert await apply(srv, event(ACTIVE, 2)) == (1, 0)
    used = await srv.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=credential.name), metadata=md(role=USER)
    )
    assert used.value == OPENAI
    assert (await deliver(srv, hook_id, trigger.token)).delivery_id


async def test_events_are_applied_once_by_version_whatever_the_order(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    credential = await create(srv)
    deleted = event(DELETED, 1)
    restored = event(ACTIVE, 2)
    assert await apply(srv, deleted, restored) == (2, 0)
    # the relay sends a batch again after a crash, or an old event arrives late: nothing changes
    assert await apply(srv, deleted, restored, event(DELETED, 1)) == (0, 3)
    got = await srv.stub().GetCredential(
        pb.GetCredentialRequest(name=credential.name), metadata=md()
    )
    assert got.name == credential.name
    rows = await execute(
        srv, "SELECT state, version FROM workspace_lifecycle WHERE workspace_id = 'ws_a'"
    )
    assert [tuple(r) for r in rows] == [("active", 2)]


async def test_a_purge_destroys_every_secret_of_the_workspace_and_keeps_tombstones(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    first = await create(srv)
    second = await create(srv, value="sk-ant-api03-" + "a" * 40, provider="anthropic")
    trigger = await create_trigger(srv)
    hook_id = trigger_id(trigger.webhook_trigger.name)
    await deliver(srv, hook_id, trigger.token)
    kept = await create(srv, ws="ws_b")
    kept_trigger = await create_trigger_in(srv, "ws_b")

    assert await apply(srv, event(DELETED, 1), event(PURGED, 2)) == (2, 0)

    rows = await execute(
        srv,
        "SELECT id, ciphertext, masked_value, purged_at, deleted_at FROM credentials "
        "WHERE workspace_id = 'ws_a' ORDER BY id",
    )
    assert sorted(r[0] for r in rows) == sorted(c.name.rsplit("/", 1)[1] for c in (first, second))
    assert all(r[1] is None and r[2] == "" and r[3] is not None and r[4] is not None for r in rows)
    triggers = await execute(
        srv,
        "SELECT token_ciphertext, token_hash, purged_at, display_name FROM webhook_triggers "
        "WHERE workspace_id = 'ws_a'",
    )
    assert [(r[0], r[1], r[2] is not None, r[3]) for r in triggers] == [
        (None, None, True, "Deploys")
    ]
    # deliveries hold no secret and stay with their tombstone
    deliveries = await execute(
        srv, "SELECT count(*) FROM webhook_deliveries WHERE trigger_id = :t", t=hook_id
    )
    assert deliveries[0][0] == 1
    # the other workspace keeps its secrets
    alive = await execute(
        srv,
        "SELECT count(*) FROM credentials WHERE workspace_id = 'ws_b' AND ciphertext IS NOT NULL",
    )
    assert alive[0][0] == 1 and kept.masked_value
    alive_hooks = await execute(
        srv,
        "SELECT count(*) FROM webhook_triggers WHERE workspace_id = 'ws_b' "
        "AND token_hash IS NOT NULL",
    )
    assert alive_hooks[0][0] == 1 and kept_trigger.token

    code, reason, _ = await fails(
        srv.stub("runtime").UseCredential(
            pb.UseCredentialRequest(name=first.name), metadata=md(role=USER)
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "WORKSPACE_NOT_FOUND")
    assert await fails(deliver(srv, hook_id, trigger.token)) == (
        grpc.StatusCode.NOT_FOUND,
        "WEBHOOK_TRIGGER_NOT_FOUND",
        [],
    )
    # final: neither a replay nor a late restore brings anything back
    assert await apply(srv, event(PURGED, 2), event(ACTIVE, 9)) == (0, 2)
    code, reason, _ = await fails(create(srv))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "WORKSPACE_NOT_FOUND")

    # one audit event for the purge, with counts only
    payloads = [
        json.loads(r[0])
        for r in await execute(srv, "SELECT payload FROM credentials_audit_outbox ORDER BY seq")
    ]
    [purge] = [p for p in payloads if p["action"] == "credential.purgeWorkspace"]
    assert purge["workspace_id"] == "ws_a" and purge["actor"] == "service:workspaces"
    assert purge["metadata"] == {"stored_values": "2", "triggers": "1", "lifecycle_version": "2"}


async def create_trigger_in(srv: CredentialsServer, ws: str) -> pb.CreateWebhookTriggerResponse:
    response: pb.CreateWebhookTriggerResponse = await srv.stub().CreateWebhookTrigger(
        pb.CreateWebhookTriggerRequest(
            parent=f"workspaces/{ws}", webhook_trigger=pb.WebhookTrigger(display_name="Kept")
        ),
        metadata=md(ws=ws),
    )
    return response


@pytest.mark.parametrize("identity", ["edge", "keys", "runtime", "outsider"])
async def test_only_the_workspaces_service_may_apply_lifecycle_events(
    credentials_server: CredentialsServer, identity: str
) -> None:
    code, reason, _ = await fails(
        credentials_server.stub(identity).ApplyWorkspaceLifecycle(
            pb.ApplyWorkspaceLifecycleRequest(events=[event(PURGED, 2)])
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")


async def test_a_malformed_event_is_refused_and_changes_nothing(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    bad = lifecycle_pb2.WorkspaceLifecycleEvent(
        id="x", workspace_id="ws_a", state=PURGED, version=2
    )
    code, reason, fields = await fails(apply(srv, event(DELETED, 1), bad))
    assert (code, reason, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_LIFECYCLE_EVENT",
        ["events[1]"],
    )
    assert await execute(srv, "SELECT * FROM workspace_lifecycle") == []
