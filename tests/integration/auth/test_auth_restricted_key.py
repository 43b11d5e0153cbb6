"""The grant rule in the auth service: a restricted API key cannot set a deployment PIN.

A PIN works from any address and never expires, so a key limited by CIDRs, origins or an
expiry would shed those limits through it (issue 8); an unrestricted key and a user may.
"""

from __future__ import annotations

import grpc
import pytest
from railguard.access.v1 import access_pb2
from railguard.auth.v1 import auth_service_pb2 as pb

from .conftest import AuthServer, as_user, error_info

PIN_NAME = "workspaces/w1/deployments/d1/pin"


def _key(restricted: bool) -> object:
    return as_user(
        "admin",
        workspace_id="w1",
        role=access_pb2.ROLE_ADMIN,
        api_key_id="k1",
        scopes=("deployments:write",),
        api_key_restricted=restricted,
    )


async def test_a_restricted_key_cannot_set_a_pin(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    request = pb.SetDeploymentPinRequest(name=PIN_NAME, pin="258046")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetDeploymentPin(request, metadata=_key(restricted=True))
    assert error_info(err.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "KEY_RESTRICTED")
    pin = await stub.SetDeploymentPin(request, metadata=_key(restricted=False))
    assert pin.name == PIN_NAME
