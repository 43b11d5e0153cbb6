"""Webhook triggers: tokens shown once, rotation, deletion, the public delivery route and its
uniform NOT_FOUND, and the delivery log."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb

from .conftest import CredentialsServer, md
from .test_credentials_api import fails

USER, ADMIN = access_pb2.ROLE_USER, access_pb2.ROLE_ADMIN
ANON = {"ws": "", "role": access_pb2.ROLE_UNSPECIFIED}


async def create_trigger(srv: CredentialsServer, **request: Any) -> pb.CreateWebhookTriggerResponse:
    response: pb.CreateWebhookTriggerResponse = await srv.stub().CreateWebhookTrigger(
        pb.CreateWebhookTriggerRequest(
            parent="workspaces/ws_a",
            webhook_trigger=pb.WebhookTrigger(display_name="Deploys"),
            **request,
        ),
        metadata=md(),
    )
    return response


async def deliver(
    srv: CredentialsServer, trigger_id: str, token: str, ip: str = "203.0.113.9", **payload: Any
) -> pb.DeliverWebhookResponse:
    body = struct_pb2.Struct()
    body.update(payload)
    response: pb.DeliverWebhookResponse = await srv.stub().DeliverWebhook(
        pb.DeliverWebhookRequest(trigger_id=trigger_id, token=token, payload=body),
        metadata=md(client_ip=ip, **ANON),
    )
    return response


def trigger_id(name: str) -> str:
    return name.rsplit("/", 1)[1]


async def test_create_shows_the_token_once(credentials_server: CredentialsServer) -> None:
    srv = credentials_server
    created = await create_trigger(srv, request_id="hook-1")
    trigger = created.webhook_trigger
    assert created.token.startswith("rgwh_") and len(created.token) == 48
    assert trigger.url_path == f"/v1/hooks/{trigger_id(trigger.name)}"
    assert trigger.state == pb.STATE_ACTIVE and trigger.create_by == "alice"
    again = await create_trigger(srv, request_id="hook-1")
    assert again.webhook_trigger.name == trigger.name and again.token == ""
    got = await srv.stub().GetWebhookTrigger(
        pb.GetWebhookTriggerRequest(name=trigger.name), metadata=md()
    )
    listed = await srv.stub().ListWebhookTriggers(
        pb.ListWebhookTriggersRequest(parent="workspaces/ws_a"), metadata=md()
    )
    assert [t.name for t in listed.webhook_triggers] == [trigger.name]
    for message in (got, listed):
        assert created.token.encode() not in message.SerializeToString()


async def test_deliveries_are_recorded_and_listed(credentials_server: CredentialsServer) -> None:
    srv = credentials_server
    created = await create_trigger(srv)
    tid = trigger_id(created.webhook_trigger.name)
    ids = [
        (await deliver(srv, tid, created.token, ip=f"203.0.113.{i}", n=i)).delivery_id
        for i in range(3)
    ]
    page = await srv.stub().ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(parent=created.webhook_trigger.name, page_size=2),
        metadata=md(),
    )
    assert [d.name.rsplit("/", 1)[1] for d in page.webhook_deliveries] == ids[::-1][:2]
    newest = page.webhook_deliveries[0]
    assert newest.source_ip == "203.0.113.2"
    assert newest.content_type == "application/json"
    assert newest.size_bytes == len(b'{"n":2.0}')
    rest = await srv.stub().ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(
            parent=created.webhook_trigger.name, page_size=2, page_token=page.next_page_token
        ),
        metadata=md(),
    )
    assert [d.name.rsplit("/", 1)[1] for d in rest.webhook_deliveries] == [ids[0]]
    assert rest.next_page_token == ""
    got = await srv.stub().GetWebhookTrigger(
        pb.GetWebhookTriggerRequest(name=created.webhook_trigger.name), metadata=md()
    )
    assert got.HasField("last_delivery_time")


async def test_wrong_token_is_indistinguishable_from_an_unknown_trigger(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    a, b = await create_trigger(srv), await create_trigger(srv)
    tid = trigger_id(a.webhook_trigger.name)
    answers = set()
    for target, token in (
        (tid, b.token),  # another trigger's valid token
        (tid, a.token[:-1] + ("A" if a.token[-1] != "A" else "B")),  # one character off
        (tid, "not-a-token"),
        (tid, ""),
        ("unknown", a.token),
        ("unknown", "rgwh_" + "x" * 43),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await deliver(srv, target, token)
        answers.add((err.value.code(), err.value.details(), str(err.value.trailing_metadata())))
    assert len(answers) == 1
    [(code, message, _)] = answers
    assert code == grpc.StatusCode.NOT_FOUND and message == "webhook trigger not found"
    listed = await srv.stub().ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(parent=a.webhook_trigger.name), metadata=md()
    )
    assert list(listed.webhook_deliveries) == []


async def test_rotation_and_deletion_stop_the_old_token(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    created = await create_trigger(srv)
    name, tid = created.webhook_trigger.name, trigger_id(created.webhook_trigger.name)
    rotated = await srv.stub().RotateWebhookTriggerToken(
        pb.RotateWebhookTriggerTokenRequest(name=name), metadata=md()
    )
    assert rotated.token.startswith("rgwh_") and rotated.token != created.token
    assert (await fails(deliver(srv, tid, created.token)))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "WEBHOOK_TRIGGER_NOT_FOUND",
    )
    await deliver(srv, tid, rotated.token)
    deleted = await srv.stub().DeleteWebhookTrigger(
        pb.DeleteWebhookTriggerRequest(name=name), metadata=md()
    )
    assert deleted.state == pb.STATE_DELETED
    assert (await fails(deliver(srv, tid, rotated.token)))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "WEBHOOK_TRIGGER_NOT_FOUND",
    )
    code, reason, _ = await fails(
        srv.stub().RotateWebhookTriggerToken(
            pb.RotateWebhookTriggerTokenRequest(name=name), metadata=md()
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRIGGER_DELETED")
    listed = await srv.stub().ListWebhookTriggers(
        pb.ListWebhookTriggersRequest(parent="workspaces/ws_a", show_deleted=True), metadata=md()
    )
    assert [t.state for t in listed.webhook_triggers] == [pb.STATE_DELETED]


async def test_webhook_roles_and_isolation(credentials_server: CredentialsServer) -> None:
    srv = credentials_server
    created = await create_trigger(srv)
    name = created.webhook_trigger.name
    stub = srv.stub()
    for call in (
        stub.CreateWebhookTrigger(
            pb.CreateWebhookTriggerRequest(
                parent="workspaces/ws_a", webhook_trigger=pb.WebhookTrigger(display_name="x")
            ),
            metadata=md(role=USER),
        ),
        stub.GetWebhookTrigger(pb.GetWebhookTriggerRequest(name=name), metadata=md(role=USER)),
        stub.ListWebhookTriggers(
            pb.ListWebhookTriggersRequest(parent="workspaces/ws_a"), metadata=md(role=USER)
        ),
        stub.RotateWebhookTriggerToken(
            pb.RotateWebhookTriggerTokenRequest(name=name), metadata=md(role=USER)
        ),
        stub.DeleteWebhookTrigger(
            pb.DeleteWebhookTriggerRequest(name=name), metadata=md(role=USER)
        ),
        stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(parent=name), metadata=md(role=USER)
        ),
    ):
        assert (await fails(call))[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW")
    for call in (
        stub.GetWebhookTrigger(pb.GetWebhookTriggerRequest(name=name), metadata=md(ws="ws_b")),
        stub.GetWebhookTrigger(
            pb.GetWebhookTriggerRequest(name=name.replace("ws_a", "ws_b")), metadata=md(ws="ws_b")
        ),
        stub.RotateWebhookTriggerToken(
            pb.RotateWebhookTriggerTokenRequest(name=name.replace("ws_a", "ws_b")),
            metadata=md(ws="ws_b"),
        ),
        stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(parent=name.replace("ws_a", "ws_b")),
            metadata=md(ws="ws_b"),
        ),
    ):
        assert (await fails(call))[0] == grpc.StatusCode.NOT_FOUND
    # the public route is still only reachable through the edge's mTLS identity
    code, reason, _ = await fails(
        srv.stub("keys").DeliverWebhook(
            pb.DeliverWebhookRequest(trigger_id=trigger_id(name), token=created.token)
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
