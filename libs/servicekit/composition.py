"""The wiring every composition root shares: storage, the audit relay, one-shot jobs' storage.

Each gRPC service's ``__main__.build`` opens one :class:`Storage` (the process's engine with the
pool settings and its sessions), starts one audit relay to the workspaces service, and hands its
use cases :func:`serving_collaborators` (units of work on the storage, read-only ones for the hot
reads, the RPC's audit origin, the relay's wake-up); its one-shot commands
(``purge``, ``rewrap``, ``peppers``, …) borrow a :func:`job_storage` that is disposed of when
they end. What differs per service stays in its own root.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import quote

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.audit_grpc import GrpcAuditSink, relay_now
from servicekit.clock import Clock, SystemClock
from servicekit.context import origin_from_context
from servicekit.db import (
    create_engine,
    dispose_engine,
    pool_settings,
    read_only_session_factory,
    session_factory,
)
from servicekit.outbox import AuditOutbox, AuditRelay, OutboxRelay
from servicekit.settings import Settings
from servicekit.usecase import Collaborators

if TYPE_CHECKING:  # imported where used: keys and credentials send no mail (resident memory)
    from servicekit.kms import KeyManager
    from servicekit.mail import Mail, MailOutbox

T = TypeVar("T")
U = TypeVar("U")

__all__ = [
    "Storage",
    "job_storage",
    "open_storage",
    "poke_all",
    "relay_interval",
    "run_audited_job",
    "serving_collaborators",
    "service_key_manager",
    "start_audit_relay",
    "start_mail_relay",
]


@dataclass(frozen=True, slots=True)
class Storage:
    """The process's database: one engine and its sessions (:func:`serving_collaborators` adds
    the read-only ones on the same pool)."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def close(self) -> None:
        """Dispose of the engine (last, in a root's ``on_stop``)."""
        await dispose_engine(self.engine)


def open_storage(settings: Settings) -> Storage:
    """The engine for ``RAILGUARD_<SERVICE>_DATABASE_URL`` with ``RAILGUARD_DB_POOL_*`` applied."""
    engine = create_engine(settings.database_url, **pool_settings(settings))
    sessions = session_factory(engine)
    return Storage(engine, sessions)


@contextlib.asynccontextmanager
async def job_storage(settings: Settings) -> AsyncIterator[Storage]:
    """Storage for a one-shot command, disposed of when the command ends (even on error)."""
    storage = open_storage(settings)
    try:
        yield storage
    finally:
        await storage.close()


async def run_audited_job(
    settings: Settings,
    outbox: AuditOutbox,
    job: Callable[[async_sessionmaker[AsyncSession], Clock], Awaitable[T]],
    clock: Clock | None = None,
) -> T:
    """Run a one-shot job (a purge, say) on storage of its own, then try to relay the audit
    events it wrote to ``outbox`` (:func:`~servicekit.audit_grpc.relay_now`: what cannot be
    shipped now stays queued for the running servers). ``job`` gets the sessions and the clock
    (``clock`` or the system's); its result is returned."""
    clock = clock or SystemClock()
    async with job_storage(settings) as storage:
        result = await job(storage.sessions, clock)
        await relay_now(settings, storage.sessions, outbox, clock)
    return result


def serving_collaborators(
    sessions: async_sessionmaker[AsyncSession],
    unit: Callable[[async_sessionmaker[AsyncSession]], U],
    after_commit: Callable[[], None],
    clock: Clock | None = None,
) -> Collaborators[U]:
    """What the use cases serving a process's RPCs are built on: units of work ``unit`` on
    ``sessions`` (the read-only ones on a read-only factory of the same pool), the system clock
    (or ``clock``), the RPC being served as the audit origin, and ``after_commit`` (it wakes the
    relays)."""
    reads = read_only_session_factory(sessions)
    return Collaborators(
        uow=lambda: unit(sessions),
        read_uow=lambda: unit(reads),
        clock=clock or SystemClock(),
        origin=origin_from_context,
        after_commit=after_commit,
    )


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


def service_key_manager(settings: Settings, name: str) -> KeyManager:
    """``KMS_URL`` when set; else the embedded keyring ``<state_dir>/<name>.keyring``, sealed by
    ``<state_dir>/<name>.keyring.key`` (created 0600 if absent; refused when group or others may
    read it)."""
    from servicekit.kms import MasterKey, key_manager_from_url

    if settings.kms_url:
        return key_manager_from_url(settings.kms_url)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.state_dir / f"{name}.keyring.key"
    try:
        MasterKey.generate().write_file(key_file)
    except FileExistsError:
        pass  # an existing master key is kept, never overwritten
    if key_file.stat().st_mode & 0o077:
        raise PermissionError(f"{key_file} must not be readable by group or others (chmod 600)")
    keyring = settings.state_dir / f"{name}.keyring"
    return key_manager_from_url(
        f"local://{quote(str(keyring))}?master_key_file={quote(str(key_file))}&key={name}"
    )


def start_mail_relay(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    outbox: MailOutbox,
    kms: KeyManager,
) -> tuple[MailOutbox, OutboxRelay[Mail]]:
    """Seal ``outbox`` with ``kms`` and start relaying it to the configured sender.

    The sealed outbox is the one the unit of work writes to; the caller stops the relay
    (``mailer.stop`` in its ``on_stop``) and pokes it after each commit.
    """
    from servicekit.mail import mail_relay

    sealed = outbox.with_sealer(kms)
    mailer = mail_relay(settings, sessions, sealed)
    mailer.start()
    return sealed, mailer


class _Pokeable(Protocol):
    def poke(self) -> None: ...


def poke_all(*loops: _Pokeable) -> Callable[[], None]:
    """An ``after_commit`` that wakes every relay a commit may have given work to."""

    def poke() -> None:
        for loop in loops:
            loop.poke()

    return poke
