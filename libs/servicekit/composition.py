"""The wiring every composition root shares: storage, the audit relay, one-shot jobs' storage.

Each gRPC service's ``__main__.build`` opens one :class:`Storage` (the process's engine with the
pool settings, its sessions, and the read-only sessions the hot reads use), starts one audit
relay to the workspaces service, and hands both to its use cases; its one-shot commands
(``purge``, ``rewrap``, ``peppers``, …) borrow a :func:`job_storage` that is disposed of when
they end. What differs per service stays in its own root.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.audit_grpc import GrpcAuditSink
from servicekit.db import create_engine, pool_settings, read_only_session_factory, session_factory
from servicekit.outbox import AuditOutbox, AuditRelay
from servicekit.settings import Settings

__all__ = ["Storage", "job_storage", "open_storage", "relay_interval", "start_audit_relay"]


@dataclass(frozen=True, slots=True)
class Storage:
    """The process's database: one engine, its sessions, and read-only sessions on the same pool."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]

    async def close(self) -> None:
        """Dispose of the engine (last, in a root's ``on_stop``)."""
        await self.engine.dispose()


def open_storage(settings: Settings) -> Storage:
    """The engine for ``RAILGUARD_<SERVICE>_DATABASE_URL`` with ``RAILGUARD_DB_POOL_*`` applied."""
    engine = create_engine(settings.database_url, **pool_settings(settings))
    sessions = session_factory(engine)
    return Storage(engine, sessions, read_only_session_factory(sessions))


@contextlib.asynccontextmanager
async def job_storage(settings: Settings) -> AsyncIterator[Storage]:
    """Storage for a one-shot command, disposed of when the command ends (even on error)."""
    storage = open_storage(settings)
    try:
        yield storage
    finally:
        await storage.close()


def relay_interval(settings: Settings) -> float:
    """``RAILGUARD_AUDIT_RELAY_INTERVAL``: seconds between outbox relay passes (a commit wakes it)."""
    return settings.get_float("AUDIT_RELAY_INTERVAL", 1.0)


def start_audit_relay(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    outbox: AuditOutbox,
    channel: grpc.aio.Channel,
) -> AuditRelay:
    """Start relaying ``outbox`` to the workspaces service's ``AppendAuditEvents`` over ``channel``.

    The caller stops it (``relay.stop`` in its ``on_stop``) and pokes it after each commit.
    """
    relay = AuditRelay(sessions, outbox, GrpcAuditSink(channel), interval=relay_interval(settings))
    relay.start()
    return relay
