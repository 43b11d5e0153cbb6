"""A real workspaces server (mTLS, real database) with an in-memory user directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from servicekit import Registration, Settings, SystemClock, Wiring, create_engine, session_factory
from testkit import channel_as, running, test_settings
from workspaces_service.__main__ import MIGRATIONS
from workspaces_service.adapters.repository import WorkspacesUnitOfWork
from workspaces_service.servicer import WorkspacesServicer
from workspaces_service.usecases import WorkspacesService


@dataclass(frozen=True)
class User:
    id: str
    email: str


class Directory:
    """The user directory as the auth service would answer it."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    def add(self, user_id: str) -> User:
        user = User(user_id, f"{user_id}@example.com")
        self.users[user_id] = user
        return user

    async def find_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    async def find_by_id(self, user_id: str) -> User | None:
        return self.users.get(user_id)


@dataclass
class WorkspacesServer:
    port: int
    directory: Directory
    pki: Path

    def stub(self, identity: str = "edge") -> workspaces_service_pb2_grpc.WorkspacesServiceStub:
        return workspaces_service_pb2_grpc.WorkspacesServiceStub(channel_as(identity, self.pki, self.port))


@pytest.fixture
async def workspaces_server(pki: Path, database_url: str) -> AsyncIterator[WorkspacesServer]:
    directory = Directory()
    for uid in ("alice", "bob", "carol", "dave"):
        directory.add(uid)

    async def build(settings: Settings) -> Wiring:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        service = WorkspacesService(lambda: WorkspacesUnitOfWork(sessions), SystemClock(), directory)
        registration = Registration(
            workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
            WorkspacesServicer(service),
            workspaces_service_pb2,
        )
        return Wiring([registration], on_stop=[engine.dispose])

    settings = test_settings("workspaces", pki, database_url)
    async with running(settings, build, MIGRATIONS) as server:
        yield WorkspacesServer(server.port, directory, pki)
