"""A service whose database is down answers UNAVAILABLE with a retry delay, never INTERNAL."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest
from devstack import free_port
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Principal, Registration, Settings, Wiring
from servicekit.db import create_engine, dispose_engine
from sqlalchemy import text
from testkit import channel_as, principal_metadata, running, test_settings


class _DatabaseDown(workspaces_service_pb2_grpc.WorkspacesServiceServicer):
    """Reads from a PostgreSQL that is not there, through the real engine and driver."""

    async def ListWorkspaces(self, request: object, context: object) -> pb.ListWorkspacesResponse:
        engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await dispose_engine(engine)
        return pb.ListWorkspacesResponse()


async def _build(settings: Settings) -> Wiring:
    return Wiring(
        [
            Registration(
                workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
                _DatabaseDown(),
                pb,
            )
        ]
    )


async def test_a_database_outage_is_unavailable_with_retry_info(
    pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(test_settings("workspaces", pki), _build) as server:
        channel = channel_as("edge", pki, server.port)
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        with caplog.at_level(logging.WARNING, logger="servicekit.rpc"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListWorkspaces(
                    pb.ListWorkspacesRequest(),
                    metadata=principal_metadata(Principal(user_id="u1")),
                    timeout=10,
                )
        await channel.close()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(err.value)
    assert status is not None
    reasons, delays = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reasons.append(info.reason)
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delays.append(retry.retry_delay.ToMilliseconds())
    assert reasons == ["DATABASE_UNAVAILABLE"]
    assert delays == [1000]
    records = [
        r for r in caplog.records if r.name == "servicekit.rpc" and r.levelno >= logging.WARNING
    ]
    # one concise line, no traceback
    assert [r.getMessage() for r in records] == ["dependency unavailable"]
    assert all(r.exc_info is None for r in records)
