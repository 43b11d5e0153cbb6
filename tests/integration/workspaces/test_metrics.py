"""Prometheus metrics on their own listener: calls are counted by method and code, no ids leak."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import grpc
import pytest
from devstack import free_port
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Principal
from testkit import channel_as, principal_metadata, running, test_settings
from workspaces_service.__main__ import MIGRATIONS, build


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback listener
        return str(response.read().decode())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_rpcs_are_counted_without_identifiers(pki: Path, database_url: str) -> None:
    port = free_port()
    settings = test_settings(
        "workspaces", pki, database_url, {"RAILGUARD_METRICS_LISTEN": f"127.0.0.1:{port}"}
    )
    async with running(settings, build, MIGRATIONS) as server:
        channel = channel_as("edge", pki, server.port)
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        secret_user = "user-7f3a9"
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetWorkspace(
                pb.GetWorkspaceRequest(name="workspaces/w-404"),
                metadata=principal_metadata(
                    Principal(user_id=secret_user, workspace_id="w-404", role=1)
                ),
            )
        await channel.close()
        text = await asyncio.to_thread(_scrape, f"http://127.0.0.1:{port}/metrics")
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("railguard_rpc_requests_total{") and "GetWorkspace" in row
    )
    assert 'code="NOT_FOUND"' in line and line.endswith(" 1.0")
    assert "railguard_rpc_duration_seconds_bucket" in text
    assert secret_user not in text and "w-404" not in text
