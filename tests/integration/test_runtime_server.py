"""The shared server runtime: unexpected errors never leak, and the probe port serves health only."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from devstack import free_port
from grpc_health.v1 import health_pb2, health_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Principal, Registration, Settings, Wiring
from testkit import channel_as, principal_metadata, running, test_settings


class _Exploding(workspaces_service_pb2_grpc.WorkspacesServiceServicer):
    async def ListWorkspaces(self, request: object, context: object) -> pb.ListWorkspacesResponse:
        raise RuntimeError("db password=hunter2 at 10.0.0.7")  # what must never reach a caller


async def _build(settings: Settings) -> Wiring:
    return Wiring(
        [
            Registration(
                workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
                _Exploding(),
                pb,
            )
        ]
    )


async def test_unexpected_errors_become_a_generic_internal(pki: Path) -> None:
    async with running(test_settings("workspaces", pki), _build) as server:
        channel = channel_as("edge", pki, server.port)
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListWorkspaces(
                pb.ListWorkspacesRequest(), metadata=principal_metadata(Principal(user_id="u1"))
            )
        await channel.close()
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == "internal error"
    assert "hunter2" not in str(err.value.trailing_metadata())


async def test_the_probe_port_serves_health_and_nothing_else(pki: Path) -> None:
    port = free_port()
    settings = test_settings(
        "workspaces", pki, extra={"RAILGUARD_HEALTH_LISTEN": f"127.0.0.1:{port}"}
    )
    async with running(settings, _build):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
            reply = await health_pb2_grpc.HealthStub(plain).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await workspaces_service_pb2_grpc.WorkspacesServiceStub(plain).ListWorkspaces(
                    pb.ListWorkspacesRequest(), timeout=5
                )
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
