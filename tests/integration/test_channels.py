"""Peer channels against real mTLS servers: reads retried, writes not, reconnect within ~1 s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
from devstack import free_port
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Principal, Registration, Settings, Unavailable, Wiring
from servicekit.clients import open_channel
from testkit import principal_metadata, running, test_settings


class _Flaky(workspaces_service_pb2_grpc.WorkspacesServiceServicer):
    """Answers UNAVAILABLE to the first call of each method, then succeeds."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.calls[method] == 1:
            raise Unavailable("database blip", reason="DATABASE_UNAVAILABLE")

    async def ListWorkspaces(
        self, request: pb.ListWorkspacesRequest, context: object
    ) -> pb.ListWorkspacesResponse:
        self._count("ListWorkspaces")
        return pb.ListWorkspacesResponse(workspaces=[pb.Workspace(name="workspaces/w1")])

    async def CreateWorkspace(
        self, request: pb.CreateWorkspaceRequest, context: object
    ) -> pb.Workspace:
        self._count("CreateWorkspace")
        return pb.Workspace(name="workspaces/new")


def _build(servicer: _Flaky):  # type: ignore[no-untyped-def]
    async def build(settings: Settings) -> Wiring:
        return Wiring(
            [
                Registration(
                    workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
                    servicer,
                    pb,
                )
            ]
        )

    return build


_MD = principal_metadata(Principal(user_id="u1"))


async def test_reads_are_retried_and_writes_are_not(pki: Path) -> None:
    servicer = _Flaky()
    async with running(test_settings("workspaces", pki), _build(servicer)) as server:
        channel = open_channel(test_settings("edge", pki), f"127.0.0.1:{server.port}")
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        got = await stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=_MD, timeout=5)
        assert [w.name for w in got.workspaces] == ["workspaces/w1"]
        try:
            await stub.CreateWorkspace(pb.CreateWorkspaceRequest(), metadata=_MD, timeout=5)
            raise AssertionError("a write was retried past its failure")
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE
        await channel.close()
    assert servicer.calls == {"ListWorkspaces": 2, "CreateWorkspace": 1}


async def test_a_returning_peer_is_reached_within_about_a_second(pki: Path) -> None:
    port = free_port()
    channel = open_channel(test_settings("edge", pki), f"127.0.0.1:{port}")
    stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
    request = pb.ListWorkspacesRequest()
    # 6 s of failed attempts: gRPC's default backoff (1 s × 1.6ⁿ) would next try at ~9 s
    outage_ends = time.monotonic() + 6.0
    while time.monotonic() < outage_ends:
        try:
            await stub.ListWorkspaces(request, metadata=_MD, timeout=0.5)
        except grpc.aio.AioRpcError as err:
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        await asyncio.sleep(0.2)
    servicer = _Flaky()
    servicer.calls["ListWorkspaces"] = 1  # answer at once
    settings = test_settings("workspaces", pki, extra={"RAILGUARD_LISTEN": f"127.0.0.1:{port}"})
    async with running(settings, _build(servicer)):
        back = time.monotonic()
        recovered = None
        while time.monotonic() - back < 10:
            try:
                await stub.ListWorkspaces(request, metadata=_MD, timeout=0.5)
                recovered = time.monotonic() - back
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
    await channel.close()
    assert recovered is not None and recovered <= 1.5, recovered
