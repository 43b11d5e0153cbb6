"""GetSessionState through a real server: internal to the edge, and the truth about a session."""

from __future__ import annotations

from typing import Any

import grpc
import jwt
import pytest
from railguard.auth.v1 import auth_service_pb2 as pb

from .conftest import AuthServer, as_user, error_info

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"


async def _active(server: AuthServer, session_id: str) -> bool:
    state = await server.stub("edge").GetSessionState(
        pb.GetSessionStateRequest(session_id=session_id)
    )
    return state.active


async def _login(server: AuthServer) -> dict[str, Any]:
    tokens = (await server.stub().Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))).tokens
    return jwt.decode(tokens.access_token, options={"verify_signature": False})


async def test_a_session_is_active_until_logout(auth_server: AuthServer) -> None:
    await auth_server.stub().SignUp(
        pb.SignUpRequest(email=EMAIL, password=PASSWORD, display_name="Alice")
    )
    here, there = await _login(auth_server), await _login(auth_server)
    assert await _active(auth_server, here["sid"])
    await auth_server.stub().Logout(pb.LogoutRequest(), metadata=as_user(here["sub"], here["sid"]))
    assert not await _active(auth_server, here["sid"])
    assert await _active(auth_server, there["sid"])
    assert not await _active(auth_server, "f" * 32)  # unknown: not active


@pytest.mark.parametrize("caller", ["workspaces", "keys", "credentials", "outsider"])
async def test_only_the_edge_may_ask(auth_server: AuthServer, caller: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await auth_server.stub(caller).GetSessionState(
            pb.GetSessionStateRequest(session_id="f" * 32)
        )
    code, reason, _ = error_info(err.value)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")


async def test_an_empty_session_id_is_invalid(auth_server: AuthServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await auth_server.stub("edge").GetSessionState(pb.GetSessionStateRequest())
    code, reason, _ = error_info(err.value)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SESSION_ID")
