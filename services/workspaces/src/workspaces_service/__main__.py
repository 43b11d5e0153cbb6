"""Composition root of the workspaces service: settings → adapters → serve()."""

from __future__ import annotations

from pathlib import Path

from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from servicekit import (
    Registration,
    Settings,
    SystemClock,
    Wiring,
    create_engine,
    open_channel,
    run_service,
    session_factory,
)

from workspaces_service.adapters.directory import AuthDirectory
from workspaces_service.adapters.repository import WorkspacesUnitOfWork
from workspaces_service.servicer import WorkspacesServicer
from workspaces_service.usecases import WorkspacesService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


async def build(settings: Settings) -> Wiring:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    auth_channel = open_channel(settings, settings.peers.auth)
    service = WorkspacesService(lambda: WorkspacesUnitOfWork(sessions), SystemClock(), AuthDirectory(auth_channel))
    registration = Registration(
        workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
        WorkspacesServicer(service),
        workspaces_service_pb2,
    )
    return Wiring([registration], on_stop=[auth_channel.close, engine.dispose])


if __name__ == "__main__":
    run_service("workspaces", build, MIGRATIONS)
