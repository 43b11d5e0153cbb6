"""SIGTERM on a gRPC service: refuse new calls, finish the in-flight one, release, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from devstack import free_port
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Principal
from testkit import channel_as, principal_metadata

_ROOT = Path(__file__).resolve().parents[3]


def _start(pki: Path, state: Path, port: int, grace: float) -> subprocess.Popen[bytes]:
    state.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "RAILGUARD_LISTEN": f"127.0.0.1:{port}",
        "RAILGUARD_CERTS_DIR": str(pki),
        "RAILGUARD_STATE_DIR": str(state),
        "RAILGUARD_GRACE_SECONDS": str(grace),
        "RAILGUARD_MIGRATE_ON_START": "0",
        "RAILGUARD_LOG_LEVEL": "WARNING",
    }
    with (state / "out.log").open("wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.shutdown.slow_service"],
            cwd=_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _wait_serving(stub: workspaces_service_pb2_grpc.WorkspacesServiceStub) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            await stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=_MD, timeout=5)
            return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    raise TimeoutError("the service did not start")


_MD = principal_metadata(Principal(user_id="u1"))


async def test_sigterm_finishes_in_flight_calls_and_exits_zero(pki: Path, tmp_path: Path) -> None:
    port = free_port()
    process = _start(pki, tmp_path / "state", port, grace=5.0)
    channel = channel_as("edge", pki, port)
    stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
    try:
        await _wait_serving(stub)
        in_flight = asyncio.ensure_future(
            stub.ListWorkspaces(pb.ListWorkspacesRequest(), metadata=_MD, timeout=10)
        )
        await asyncio.sleep(0.3)  # the call is being served
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # a new connection is refused while the old call drains
        late = channel_as("edge", pki, port)
        try:
            await workspaces_service_pb2_grpc.WorkspacesServiceStub(late).ListWorkspaces(
                pb.ListWorkspacesRequest(), metadata=_MD, timeout=1
            )
            raise AssertionError("a call was accepted after SIGTERM")
        except grpc.aio.AioRpcError as err:
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            await late.close()
        reply = await in_flight  # acknowledged: the in-flight call completed
        assert [w.name for w in reply.workspaces] == ["workspaces/slow"]
        code = await asyncio.to_thread(process.wait, 10)
        took = time.monotonic() - sent
    finally:
        await channel.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    output = (tmp_path / "state" / "out.log").read_text()
    assert code == 0, output
    assert took < 4.0, took  # drained when the call finished, not after the full 5 s grace
    assert (tmp_path / "state" / "stopped").read_text() == "released"
    assert "Traceback" not in output, output


async def test_an_idle_service_stops_at_once(pki: Path, tmp_path: Path) -> None:
    port = free_port()
    process = _start(pki, tmp_path / "state", port, grace=5.0)
    channel = channel_as("edge", pki, port)
    try:
        await _wait_serving(workspaces_service_pb2_grpc.WorkspacesServiceStub(channel))
    finally:
        await channel.close()
    await asyncio.sleep(2.0)  # the one call above finished long ago
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(process.wait, 10)
    assert code == 0
    assert time.monotonic() - sent < 2.0
