"""Composition root of the workspaces service: settings → adapters → serve().

``python -m workspaces_service [serve|migrate|purge|resend-lifecycle]``: ``purge`` runs the
retention job once (purge every deleted workspace whose window has ended) and exits; schedule it,
e.g. daily. ``resend-lifecycle`` queues the current state of every workspace ever deleted for the
receivers again (after restoring a receiver's database from a backup, say) and exits.

Lifecycle relays (one per receiver: auth, keys, credentials) ship each delete, restore and purge to
the receiver's ``ApplyWorkspaceLifecycle`` (mTLS identity ``workspaces``), at least once,
retrying with backoff capped at ``RAILGUARD_LIFECYCLE_RELAY_MAX_BACKOFF`` seconds [5].

Invitation mails go through ``workspaces_mail_outbox`` (bodies sealed by ``KMS_URL``, else a
local keyring at ``<state_dir>/workspaces.keyring``) and the mail relay: ``SMTP_URL`` or
``.eml`` files under ``<state_dir>/mail`` (servicekit.mail); links use ``PUBLIC_URL``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import grpc
from railguard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from railguard.credentials.v1 import credentials_service_pb2, credentials_service_pb2_grpc
from railguard.keys.v1 import keys_service_pb2, keys_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from servicekit import (
    AuditRelay,
    Clock,
    Registration,
    Settings,
    SystemClock,
    Wiring,
    changefeed,
    open_channel,
    run_service,
)
from servicekit.audit import AuditSink
from servicekit.composition import (
    job_storage,
    open_storage,
    poke_all,
    service_key_manager,
    serving_collaborators,
    start_mail_relay,
)
from servicekit.kms import KeyManager
from servicekit.lifecycle import GrpcLifecycleSink
from servicekit.migrations import versions_folder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from workspaces_service.accounts import AccountService
from workspaces_service.adapters.audit_sink import LocalAuditSink
from workspaces_service.adapters.directory import AuthDirectory
from workspaces_service.adapters.invitations import MAIL_OUTBOX, InvitationsUnitOfWork
from workspaces_service.adapters.repository import WorkspacesUnitOfWork
from workspaces_service.adapters.tables import AUDIT_OUTBOX, CHANGE_LOG, LIFECYCLE_OUTBOXES
from workspaces_service.config import WorkspacesSettings
from workspaces_service.invitations import InvitationConfig, InvitationService
from workspaces_service.security_log import SecurityLogService
from workspaces_service.servicer import WorkspacesServicer
from workspaces_service.usecases import UserDirectory, WorkspacesDeps, WorkspacesService

MIGRATIONS = versions_folder(__file__)
_log = logging.getLogger("workspaces_service")


def wire_service(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    directory: UserDirectory,
    *,
    relay_interval: float = 1.0,
    lifecycle_relays: Sequence[AuditRelay] = (),
) -> tuple[WorkspacesService, AuditRelay]:
    """The use cases and the relay that moves their audit outbox into the audit log.

    The service relays its own events through the same outbox, but in-process: its sink is the
    append use case itself rather than an mTLS call to its own server. ``lifecycle_relays``
    (see :func:`lifecycle_relays`) are woken after each commit as well.
    """
    relay: AuditRelay | None = None

    def poke() -> None:
        if relay is not None:
            relay.poke()
        for lifecycle in lifecycle_relays:
            lifecycle.poke()

    shared = serving_collaborators(sessions, WorkspacesUnitOfWork, poke, clock)
    service = WorkspacesService(WorkspacesDeps(shared, directory))
    relay = AuditRelay(
        sessions, AUDIT_OUTBOX, LocalAuditSink(service), clock=clock, interval=relay_interval
    )
    return service, relay


def lifecycle_sinks(settings: Settings) -> tuple[dict[str, AuditSink], list[grpc.aio.Channel]]:
    """One ``ApplyWorkspaceLifecycle`` sink per receiver, and the channels to close."""
    auth_channel = open_channel(settings, settings.peers.auth)
    keys_channel = open_channel(settings, settings.peers.keys)
    credentials_channel = open_channel(settings, settings.peers.credentials)
    sinks: dict[str, AuditSink] = {
        "auth": GrpcLifecycleSink(
            auth_service_pb2_grpc.AuthServiceStub(auth_channel).ApplyWorkspaceLifecycle,
            auth_service_pb2.ApplyWorkspaceLifecycleRequest,
        ),
        "keys": GrpcLifecycleSink(
            keys_service_pb2_grpc.KeysServiceStub(keys_channel).ApplyWorkspaceLifecycle,
            keys_service_pb2.ApplyWorkspaceLifecycleRequest,
        ),
        "credentials": GrpcLifecycleSink(
            credentials_service_pb2_grpc.CredentialsServiceStub(
                credentials_channel
            ).ApplyWorkspaceLifecycle,
            credentials_service_pb2.ApplyWorkspaceLifecycleRequest,
        ),
    }
    return sinks, [auth_channel, keys_channel, credentials_channel]


def lifecycle_relays(
    sessions: async_sessionmaker[AsyncSession],
    sinks: Mapping[str, AuditSink],
    *,
    clock: Clock | None = None,
    interval: float = 1.0,
    max_backoff: float = 5.0,
) -> list[AuditRelay]:
    """A relay per receiver over its own outbox, so a receiver that is down delays only itself."""
    return [
        AuditRelay(
            sessions,
            LIFECYCLE_OUTBOXES[name],
            sink,
            clock=clock,
            interval=interval,
            max_backoff=max_backoff,
        )
        for name, sink in sinks.items()
    ]


async def build(settings: Settings) -> Wiring:
    config = WorkspacesSettings.load(settings)
    storage = open_storage(settings)
    sessions = storage.sessions
    auth_channel = open_channel(settings, settings.peers.auth)
    sinks, channels = lifecycle_sinks(settings)
    lifecycle = lifecycle_relays(
        sessions,
        sinks,
        interval=config.relay_interval,
        max_backoff=config.lifecycle_relay_max_backoff,
    )
    service, relay = wire_service(
        sessions,
        SystemClock(),
        AuthDirectory(auth_channel),
        relay_interval=config.relay_interval,
        lifecycle_relays=lifecycle,
    )
    relay.start()
    for lifecycle_relay in lifecycle:
        lifecycle_relay.start()
    kms = _key_manager(settings)
    await kms.self_check()
    mail_outbox, mailer = start_mail_relay(settings, sessions, MAIL_OUTBOX, kms)
    mailing = serving_collaborators(
        sessions, lambda pool: InvitationsUnitOfWork(pool, mail_outbox), poke_all(relay, mailer)
    )
    invitations = InvitationService(
        mailing, AuthDirectory(auth_channel), InvitationConfig(public_url=config.public_url)
    )
    registration = Registration(
        workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
        WorkspacesServicer(
            service,
            invitations,
            SecurityLogService(mailing.uow),
            AccountService(mailing),
        ),
        workspaces_service_pb2,
    )
    # on_stop runs in reverse: the relays stop before the engine is disposed and channels close
    return changefeed.wiring(
        registration,
        sessions,
        CHANGE_LOG,
        [
            auth_channel.close,
            *(c.close for c in channels),
            storage.close,
            kms.close,
            relay.stop,
            mailer.stop,
            *(r.stop for r in lifecycle),
        ],
    )


def _key_manager(settings: Settings) -> KeyManager:
    """``KMS_URL`` when set; else the embedded keyring ``<state_dir>/workspaces.keyring``."""
    return service_key_manager(settings, "workspaces")


class _NoDirectory:
    """The purge job looks nobody up."""

    async def find_by_email(self, email: str) -> None:
        return None

    async def find_by_id(self, user_id: str) -> None:
        return None


async def purge(settings: Settings, clock: Clock | None = None) -> list[str]:
    """Run the retention job once, relay its audit events, and try to deliver its lifecycle
    events now (a receiver that does not answer gets them from the servers' relays later)."""
    clock = clock or SystemClock()
    channels: list[grpc.aio.Channel] = []
    async with job_storage(settings) as storage:
        try:
            service, relay = wire_service(storage.sessions, clock, _NoDirectory())
            purged = await service.purge_expired(clock.now())
            await relay.drain()
            channels = await _deliver_lifecycle_now(settings, storage.sessions, clock)
        finally:
            for channel in channels:
                await channel.close()
    _log.info("purge finished", extra={"purged": len(purged)})
    return purged


async def _deliver_lifecycle_now(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> list[grpc.aio.Channel]:
    """Best effort, like ``relay_now``: a receiver that cannot be reached keeps its events queued
    for the running servers' relays; the job never fails for it. The channels to close."""
    try:
        sinks, channels = lifecycle_sinks(settings)
    except Exception:  # noqa: BLE001 - no client identity here: the servers' relays deliver
        _log.warning("lifecycle events stay queued for the running relays")
        return []
    for name, lifecycle in zip(sinks, lifecycle_relays(sessions, sinks, clock=clock), strict=True):
        try:
            await lifecycle.drain()
        except Exception:  # noqa: BLE001 - the events stay queued for the running relays
            _log.warning("lifecycle events stay queued", extra={"receiver": name})
    return channels


async def resend_lifecycle(settings: Settings, clock: Clock | None = None) -> int:
    """Queue every deleted, restored or purged workspace's current state for the receivers again,
    and try to deliver it now; how many workspaces."""
    clock = clock or SystemClock()
    channels: list[grpc.aio.Channel] = []
    async with job_storage(settings) as storage:
        try:
            service, _ = wire_service(storage.sessions, clock, _NoDirectory())
            queued = await service.resend_lifecycle()
            channels = await _deliver_lifecycle_now(settings, storage.sessions, clock)
        finally:
            for channel in channels:
                await channel.close()
    return queued


async def _resend_command(settings: Settings, argv: list[str]) -> int:
    queued = await resend_lifecycle(settings)
    print(f"queued the lifecycle of {queued} workspace(s)")  # noqa: T201 - the one line of output
    return 0


async def _purge_command(settings: Settings, argv: list[str]) -> int:
    """Run the retention job once: purge every deleted workspace whose window has ended."""
    purged = await purge(settings)
    print(f"purged {len(purged)} workspace(s)")  # noqa: T201 - the command's one line of output
    return 0


if __name__ == "__main__":
    run_service(
        "workspaces",
        build,
        MIGRATIONS,
        {"purge": _purge_command, "resend-lifecycle": _resend_command},
    )
