"""Every session revocation reaches the auth service's change feed (``session`` "<session id>").

Through the production composition root: the Watch servicer is registered there, so the test
watches as the edge does and sees logout, RevokeSession, a password change (every other session)
and refresh-token reuse arrive, each exactly for the sessions that ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from railguard.auth.v1 import auth_service_pb2 as pb
from railguard.watch.v1 import watch_pb2, watch_pb2_grpc
from testkit import channel_as

from .conftest import AuthServer, as_token, as_user
from .test_auth_rpcs import PASSWORD, _fails, _login, _sign_up


class _Watch:
    def __init__(self, server: AuthServer) -> None:
        self._channel = channel_as("edge", server.pki, server.port)
        stub = watch_pb2_grpc.ChangeFeedServiceStub(self._channel)
        self._call = stub.Watch(watch_pb2.WatchRequest())
        self._events: AsyncIterator[watch_pb2.WatchEvent] = aiter(self._call)

    async def synced(self) -> None:
        async with asyncio.timeout(10):
            while (await anext(self._events)).WhichOneof("event") != "bookmark":
                pass

    async def sessions(self, n: int) -> set[str]:
        """The next ``n`` session changes."""
        out: set[str] = set()
        async with asyncio.timeout(10):
            while len(out) < n:
                event = await anext(self._events)
                if event.WhichOneof("event") == "change":
                    assert event.change.topic == "session"
                    out.add(event.change.key)
        return out

    async def close(self) -> None:
        self._call.cancel()
        await self._channel.close()


@pytest.fixture
async def watch(auth_server: AuthServer) -> AsyncIterator[_Watch]:
    await _sign_up(auth_server)
    w = _Watch(auth_server)
    await w.synced()
    try:
        yield w
    finally:
        await w.close()


async def test_logout_and_revoke_session(auth_server: AuthServer, watch: _Watch) -> None:
    stub = auth_server.stub()
    _, a = await _login(auth_server)
    _, b = await _login(auth_server)
    await stub.Logout(pb.LogoutRequest(), metadata=as_user(a["sub"], a["sid"]))
    assert await watch.sessions(1) == {a["sid"]}
    _, c = await _login(auth_server)
    await stub.RevokeSession(
        pb.RevokeSessionRequest(name=f"users/me/sessions/{c['sid']}"),
        metadata=as_user(b["sub"], b["sid"]),
    )
    assert await watch.sessions(1) == {c["sid"]}


async def test_a_password_change_ends_every_other_session(
    auth_server: AuthServer, watch: _Watch
) -> None:
    _, here = await _login(auth_server)
    _, there = await _login(auth_server)
    _, elsewhere = await _login(auth_server)
    await auth_server.stub().ChangePassword(
        pb.ChangePasswordRequest(current_password=PASSWORD, new_password="a wholly new phrase"),
        metadata=as_token(here),
    )
    assert await watch.sessions(2) == {there["sid"], elsewhere["sid"]}


async def test_refresh_token_reuse_ends_the_session(auth_server: AuthServer, watch: _Watch) -> None:
    stub = auth_server.stub()
    first, claims = await _login(auth_server)
    second = (
        await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    ).tokens
    await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=second.refresh_token))
    # the grandparent is reused (the parent has a grace for racing refreshes): the family dies
    await _fails(stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token)))
    assert await watch.sessions(1) == {claims["sid"]}
