"""A service built by the real runtime (run_service → serve) whose ListWorkspaces takes a while.

Run as ``python -m tests.integration.shutdown.slow_service`` by the shutdown tests.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import Registration, Settings, Wiring
from servicekit.runtime import run_service


class _Slow(workspaces_service_pb2_grpc.WorkspacesServiceServicer):
    def __init__(self, seconds: float, done: Path) -> None:
        self.seconds, self.done = seconds, done

    async def ListWorkspaces(self, request: object, context: object) -> pb.ListWorkspacesResponse:
        await asyncio.sleep(self.seconds)
        return pb.ListWorkspacesResponse(workspaces=[pb.Workspace(name="workspaces/slow")])


async def _build(settings: Settings) -> Wiring:
    done = settings.state_dir / "stopped"

    async def on_stop() -> None:
        done.write_text("released")  # resources released after the drain

    # a test knob, not a Railguard setting (servicekit.catalog refuses undeclared names)
    servicer = _Slow(float(os.environ.get("SLOW_SERVICE_SECONDS", "1.5")), done)
    return Wiring(
        [
            Registration(
                workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server, servicer, pb
            )
        ],
        on_stop=[on_stop],
    )


if __name__ == "__main__":
    run_service("workspaces", _build, Path(__file__).parent)
