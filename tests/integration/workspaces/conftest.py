"""A real workspaces server (mTLS, real database) with an in-memory user directory."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from railguard.access.v1 import access_pb2
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import (
    AuditRelay,
    Registration,
    Settings,
    Wiring,
    create_engine,
    session_factory,
)
from servicekit.db import dispose_engine
from sqlalchemy.ext.asyncio import AsyncEngine
from testkit import FakeClock, channel_as, fakes, running, test_settings
from testkit.fakes import Metadata, reason  # noqa: F401 - the tests import reason from here
from workspaces_service.__main__ import MIGRATIONS, wire_service
from workspaces_service.servicer import WorkspacesServicer
from workspaces_service.usecases import WorkspacesService

OWNER, ADMIN, USER = access_pb2.ROLE_OWNER, access_pb2.ROLE_ADMIN, access_pb2.ROLE_USER


def as_user(user: str, ws_id: str = "", role: int = 0) -> Metadata:
    """Metadata the edge would send for ``user`` acting in ``ws_id`` with ``role``."""
    return fakes.as_user(user, ws_id, role, client_ip="198.51.100.9")


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
    clock: FakeClock
    service: WorkspacesService
    relay: AuditRelay
    engine: AsyncEngine
    database_url: str

    def stub(self, identity: str = "edge") -> workspaces_service_pb2_grpc.WorkspacesServiceStub:
        return workspaces_service_pb2_grpc.WorkspacesServiceStub(
            channel_as(identity, self.pki, self.port)
        )

    async def team(self) -> str:
        """A workspace with alice Owner, bob Admin, carol User; returns its id."""
        stub = self.stub()
        ws = await stub.CreateWorkspace(
            pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name="Acme")),
            metadata=as_user("alice"),
        )
        ws_id = ws.name.split("/")[1]
        for user, role in (("bob", ADMIN), ("carol", USER)):
            await stub.CreateMember(
                pb.CreateMemberRequest(
                    parent=ws.name, member=pb.Member(email=f"{user}@example.com", role=role)
                ),
                metadata=as_user("alice", ws_id, OWNER),
            )
        return ws_id


@pytest.fixture
async def workspaces_server(pki: Path, database_url: str) -> AsyncIterator[WorkspacesServer]:
    directory = Directory()
    for uid in ("alice", "bob", "carol", "dave"):
        directory.add(uid)

    clock = FakeClock()
    wired: dict[str, object] = {}

    async def build(settings: Settings) -> Wiring:
        """As the composition root, but with a FakeClock and the relay left to the test to drive."""
        engine = create_engine(settings.database_url)
        service, relay = wire_service(
            session_factory(engine), clock, directory, relay_interval=0.05
        )
        wired.update(service=service, relay=relay, engine=engine)
        registration = Registration(
            workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
            WorkspacesServicer(service),
            workspaces_service_pb2,
        )
        return Wiring(
            [registration], on_stop=[functools.partial(dispose_engine, engine), relay.stop]
        )

    settings = test_settings("workspaces", pki, database_url)
    async with running(settings, build, MIGRATIONS) as server:
        yield WorkspacesServer(
            server.port,
            directory,
            pki,
            clock,
            wired["service"],  # type: ignore[arg-type]
            wired["relay"],  # type: ignore[arg-type]
            wired["engine"],  # type: ignore[arg-type]
            database_url,
        )
