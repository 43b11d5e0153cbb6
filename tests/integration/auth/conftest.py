"""A real auth server (mTLS, real database, the production composition root)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from auth_service.__main__ import MIGRATIONS, build
from railguard.auth.v1 import auth_service_pb2_grpc
from servicekit import Principal, Settings
from testkit import channel_as, fakes, principal_metadata, running, test_settings


@dataclass
class AuthServer:
    port: int
    pki: Path
    settings: Settings
    channels: list[grpc.aio.Channel]

    def stub(self, identity: str = "edge") -> auth_service_pb2_grpc.AuthServiceStub:
        channel = channel_as(identity, self.pki, self.port)
        self.channels.append(channel)
        return auth_service_pb2_grpc.AuthServiceStub(channel)


@pytest.fixture
async def auth_server(pki: Path, database_url: str) -> AsyncIterator[AuthServer]:
    settings = test_settings("auth", pki, database_url)
    async with running(settings, build, MIGRATIONS) as server:
        srv = AuthServer(server.port, pki, settings, [])
        try:
            yield srv
        finally:
            for channel in srv.channels:
                await channel.close()


def as_user(user_id: str, session_id: str = "", **principal: Any) -> fakes.Metadata:
    """The principal metadata the edge forwards for ``user_id`` on ``session_id``."""
    return fakes.as_user(user_id, session_id=session_id, **principal)


def as_token(claims: dict[str, Any], **principal: Any) -> tuple[tuple[str, bytes | str], ...]:
    """The principal the edge would forward for an access token with these claims."""
    return principal_metadata(
        Principal(
            user_id=claims["sub"],
            session_id=claims["sid"],
            aal=claims["aal"],
            amr=tuple(claims["amr"]),
            auth_time=claims["auth_time"],
            **principal,
        )
    )


def error_info(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, str]:
    """The code, ErrorInfo reason and message of a failed call (testkit's, as auth reads it)."""
    failure = fakes.error_info(err)
    assert failure.reason, "no ErrorInfo"
    return failure.code, failure.reason, err.details() or ""
