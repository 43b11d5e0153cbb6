"""The grant rule in the credentials service: a restricted API key cannot obtain a webhook token.

A webhook token works from any address and never expires, so a key limited by CIDRs, origins or
an expiry would shed those limits through it (issue 8); an unrestricted key and a user may.
"""

from __future__ import annotations

from typing import Any

import grpc
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb
from servicekit import Principal
from testkit import principal_metadata

from .conftest import CredentialsServer
from .test_credentials_api import fails


def _key(restricted: bool) -> Any:
    return principal_metadata(
        Principal(
            user_id="alice",
            workspace_id="ws_a",
            role=access_pb2.ROLE_ADMIN,
            api_key_id="k1",
            scopes=("webhooks:write",),
            api_key_restricted=restricted,
        )
    )


async def test_a_restricted_key_cannot_create_or_rotate_a_trigger_token(
    credentials_server: CredentialsServer,
) -> None:
    stub = credentials_server.stub()
    create = pb.CreateWebhookTriggerRequest(
        parent="workspaces/ws_a", webhook_trigger=pb.WebhookTrigger(display_name="Deploys")
    )
    code, reason, _ = await fails(stub.CreateWebhookTrigger(create, metadata=_key(True)))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "KEY_RESTRICTED")
    created = await stub.CreateWebhookTrigger(create, metadata=_key(False))
    assert created.token
    rotate = pb.RotateWebhookTriggerTokenRequest(name=created.webhook_trigger.name)
    code, reason, _ = await fails(stub.RotateWebhookTriggerToken(rotate, metadata=_key(True)))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "KEY_RESTRICTED")
    assert (await stub.RotateWebhookTriggerToken(rotate, metadata=_key(False))).token
