"""A real keys server (mTLS, real database), an in-memory workspaces dependency, a fake clock."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from keys_service.__main__ import MIGRATIONS
from keys_service.adapters.contracts import contract_modules, scope_grants
from keys_service.adapters.invalidation import NullPublisher
from keys_service.adapters.key_cache import followed_cache
from keys_service.adapters.lifecycle import destroy_workspace_keys, record_workspace_purge
from keys_service.adapters.peppers import load_pepper_ring
from keys_service.adapters.repository import SqlKeysUnitOfWork, record_workspace_change
from keys_service.adapters.tables import AUDIT_OUTBOX, CHANGE_LOG, LIFECYCLE
from keys_service.adapters.usage import LastUsedBuffer
from keys_service.domain import ApiKey, PepperRing, Role, ScopePolicy
from keys_service.ports import StoredKeyCache
from keys_service.servicer import KeysServicer
from keys_service.usecases import (
    AllowedOrigins,
    KeyEvent,
    KeysDeps,
    KeysRetention,
    KeysService,
    WorkspaceStatus,
)
from railguard.access.v1 import access_pb2
from railguard.keys.v1 import keys_service_pb2, keys_service_pb2_grpc
from servicekit import (
    AuditEvent,
    AuditRelay,
    Registration,
    Settings,
    Wiring,
    create_engine,
    origin_from_context,
    session_factory,
)
from servicekit.changefeed import ChangeFeed
from servicekit.db import dispose_engine, read_only_session_factory
from servicekit.lifecycle import LifecycleApplier
from servicekit.usecase import Collaborators
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from testkit import FakeClock, channel_as, running, test_settings
from testkit.fakes import as_key, as_user

_FEED_READ = re.compile(r"\s*SELECT\b.*\bFROM keys_change_log\b", re.DOTALL | re.IGNORECASE)
PEPPERS = "1:" + base64.b64encode(b"integration-test-pepper-32-bytes").decode()


class Workspaces:
    """ResolveAccess as the workspaces service would answer it (the real adapter is gRPC)."""

    def __init__(self) -> None:
        self.deleted: set[str] = set()
        self.roles: dict[tuple[str, str], Role] = {}

    async def status(self, workspace_id: str) -> WorkspaceStatus:
        if workspace_id in self.deleted:
            return WorkspaceStatus.DELETED
        return WorkspaceStatus.ACTIVE

    async def role_of(self, user_id: str, workspace_id: str) -> Role:
        return self.roles.get((user_id, workspace_id), Role.NONE)


class RecordingPublisher(NullPublisher):
    def __init__(self) -> None:
        self.events: list[tuple[str, KeyEvent]] = []

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None:
        self.events.append((key.id, event))


class RecordingSink:
    """An ``AuditSink`` that keeps what the relay sends (idempotent by event id, like the log)."""

    def __init__(self) -> None:
        self.events: dict[str, AuditEvent] = {}

    async def append(self, events: Any) -> None:
        for item in events:
            self.events.setdefault(item.id, item)


@dataclass
class KeysServer:
    port: int
    pki: Path
    workspaces: Workspaces
    clock: FakeClock
    usage: LastUsedBuffer
    engine: AsyncEngine
    publisher: RecordingPublisher
    relay: AuditRelay
    sink: RecordingSink
    retention: KeysRetention
    ring: PepperRing
    settings: Settings
    stored: StoredKeyCache
    statements: list[str] = field(default_factory=list)

    async def audit(self) -> list[AuditEvent]:
        """Every event recorded so far, in outbox order (relays what is pending first)."""
        await self.relay.drain()
        return list(self.sink.events.values())

    def stub(self, identity: str = "edge") -> keys_service_pb2_grpc.KeysServiceStub:
        return keys_service_pb2_grpc.KeysServiceStub(channel_as(identity, self.pki, self.port))

    def md(
        self,
        user: str,
        ws: str = "ws_a",
        role: int = access_pb2.ROLE_USER,
        key_scopes: tuple[str, ...] | None = None,
        client_ip: str = "",
        *,
        api_key_id: str = "kx",
        aal: str = "aal1",
    ) -> Any:
        """A principal as the edge forwards it; with ``key_scopes``, an API key ``api_key_id``."""
        if key_scopes is not None:
            return as_key(user, ws, key_scopes, api_key_id, role=role, client_ip=client_ip, aal=aal)
        return as_user(user, ws, role, client_ip=client_ip, aal=aal)


@pytest.fixture
async def keys_server(pki: Path, database_url: str) -> AsyncIterator[KeysServer]:
    workspaces = Workspaces()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock = FakeClock(start)
    publisher = RecordingPublisher()
    holder: dict[str, Any] = {}

    async def build(settings: Settings) -> Wiring:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)

        def uow() -> SqlKeysUnitOfWork:
            return SqlKeysUnitOfWork(sessions)

        read_sessions = read_only_session_factory(sessions)

        def read_uow() -> SqlKeysUnitOfWork:
            return SqlKeysUnitOfWork(read_sessions)

        usage = LastUsedBuffer(uow, interval=3600)
        # VerifyApiKey's cache as in production: every test here runs with it
        feed = ChangeFeed(sessions, CHANGE_LOG)
        follower, stored = followed_cache(feed)
        ring = load_pepper_ring(settings)
        policy = ScopePolicy(scope_grants(contract_modules()))
        sink = RecordingSink()
        # as the composition root, but the relay is left to the test to drive (drain)
        relay = AuditRelay(sessions, AUDIT_OUTBOX, sink, clock=clock)
        service = KeysService(
            KeysDeps(
                Collaborators(uow=uow, clock=clock, origin=origin_from_context, read_uow=read_uow),
                ring,
                policy,
                workspaces,
                publisher,
                usage,
                stored=stored,
            )
        )
        retention = KeysRetention(Collaborators(uow=uow, clock=clock))
        holder.update(
            engine=engine,
            usage=usage,
            relay=relay,
            sink=sink,
            retention=retention,
            ring=ring,
            stored=stored,
        )
        registration = Registration(
            keys_service_pb2_grpc.add_KeysServiceServicer_to_server,
            KeysServicer(
                service,
                LifecycleApplier(
                    sessions,
                    LIFECYCLE,
                    destroy_workspace_keys,
                    after_purge=record_workspace_purge,
                    on_applied=record_workspace_change,
                    clock=clock,
                ),
                AllowedOrigins(read_uow, clock),
            ),
            keys_service_pb2,
        )
        return Wiring(
            [registration],
            on_stop=[
                functools.partial(dispose_engine, engine),
                usage.stop,
                relay.stop,
                follower.close,
                feed.close,
            ],
        )

    settings = test_settings("keys", pki, database_url, {"RAILGUARD_KEYS_PEPPERS": PEPPERS})
    async with running(settings, build, MIGRATIONS) as server:
        ks = KeysServer(
            server.port,
            pki,
            workspaces,
            clock,
            holder["usage"],
            holder["engine"],
            publisher,
            holder["relay"],
            holder["sink"],
            holder["retention"],
            holder["ring"],
            settings,
            holder["stored"],
        )

        @event.listens_for(ks.engine.sync_engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not _FEED_READ.match(statement):  # the change feed's own polling is not counted
                ks.statements.append(statement)

        yield ks
