"""Composition root of the workspaces service: settings → adapters → serve().

``python -m workspaces_service [serve|migrate|purge]``: ``purge`` runs the retention job once
(purge every deleted workspace whose window has ended) and exits; schedule it, e.g. daily.

Invitation mails go through ``workspaces_mail_outbox`` (bodies sealed by ``KMS_URL``, else a
local keyring at ``<state_dir>/workspaces.keyring``) and the mail relay: ``SMTP_URL`` or
``.eml`` files under ``<state_dir>/mail`` (servicekit.mail); links use ``PUBLIC_URL``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from servicekit import (
    AuditRelay,
    Clock,
    Registration,
    Settings,
    SystemClock,
    Wiring,
    create_engine,
    open_channel,
    origin_from_context,
    run_service,
    session_factory,
)
from servicekit.kms import KeyManager, MasterKey, key_manager_from_url
from servicekit.mail import mail_relay
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from workspaces_service.accounts import AccountService
from workspaces_service.adapters.audit_sink import LocalAuditSink
from workspaces_service.adapters.directory import AuthDirectory
from workspaces_service.adapters.invitations import MAIL_OUTBOX, InvitationsUnitOfWork
from workspaces_service.adapters.repository import WorkspacesUnitOfWork
from workspaces_service.adapters.tables import AUDIT_OUTBOX
from workspaces_service.invitations import InvitationConfig, InvitationService
from workspaces_service.security_log import SecurityLogService
from workspaces_service.servicer import WorkspacesServicer
from workspaces_service.usecases import UserDirectory, WorkspacesService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
_log = logging.getLogger("workspaces_service")


def wire_service(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    directory: UserDirectory,
    *,
    relay_interval: float = 1.0,
    origin: Callable[[], object] | None = None,
) -> tuple[WorkspacesService, AuditRelay]:
    """The use cases and the relay that moves their audit outbox into the audit log.

    The service relays its own events through the same outbox, but in-process: its sink is the
    append use case itself rather than an mTLS call to its own server.
    """
    relay: AuditRelay | None = None

    def poke() -> None:
        if relay is not None:
            relay.poke()

    service = WorkspacesService(
        lambda: WorkspacesUnitOfWork(sessions),
        clock,
        directory,
        origin=origin_from_context,
        after_commit=poke,
    )
    relay = AuditRelay(
        sessions, AUDIT_OUTBOX, LocalAuditSink(service), clock=clock, interval=relay_interval
    )
    return service, relay


async def build(settings: Settings) -> Wiring:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    auth_channel = open_channel(settings, settings.peers.auth)
    service, relay = wire_service(
        sessions,
        SystemClock(),
        AuthDirectory(auth_channel),
        relay_interval=settings.get_float("AUDIT_RELAY_INTERVAL", 1.0),
    )
    relay.start()
    kms = _key_manager(settings)
    await kms.self_check()
    mail_outbox = MAIL_OUTBOX.with_sealer(kms)
    mailer = mail_relay(settings, sessions, mail_outbox)
    mailer.start()

    def after_commit() -> None:
        relay.poke()
        mailer.poke()

    invitations = InvitationService(
        lambda: InvitationsUnitOfWork(sessions, mail_outbox),
        SystemClock(),
        AuthDirectory(auth_channel),
        InvitationConfig(public_url=settings.get("PUBLIC_URL", "https://127.0.0.1:8443")),
        origin=origin_from_context,
        after_commit=after_commit,
    )
    registration = Registration(
        workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
        WorkspacesServicer(
            service,
            invitations,
            SecurityLogService(lambda: InvitationsUnitOfWork(sessions, mail_outbox)),
            AccountService(
                lambda: InvitationsUnitOfWork(sessions, mail_outbox),
                SystemClock(),
                origin=origin_from_context,
                after_commit=after_commit,
            ),
        ),
        workspaces_service_pb2,
    )
    # on_stop runs in reverse: the relays stop before the engine is disposed
    return Wiring(
        [registration],
        on_stop=[auth_channel.close, engine.dispose, kms.close, relay.stop, mailer.stop],
    )


def _key_manager(settings: Settings) -> KeyManager:
    """``KMS_URL`` when set; else a local keyring whose master key is created 0600 if absent."""
    if settings.kms_url:
        return key_manager_from_url(settings.kms_url)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.state_dir / "workspaces.keyring.key"
    try:
        MasterKey.generate().write_file(key_file)
    except FileExistsError:
        pass
    if key_file.stat().st_mode & 0o077:
        raise PermissionError(f"{key_file} must not be readable by group or others (chmod 600)")
    keyring = settings.state_dir / "workspaces.keyring"
    return key_manager_from_url(
        f"local://{quote(str(keyring))}?master_key_file={quote(str(key_file))}&key=workspaces"
    )


class _NoDirectory:
    """The purge job looks nobody up."""

    async def find_by_email(self, email: str) -> None:
        return None

    async def find_by_id(self, user_id: str) -> None:
        return None


async def purge(settings: Settings, clock: Clock | None = None) -> list[str]:
    """Run the retention job once and relay its audit events; the purged workspace ids."""
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    try:
        service, relay = wire_service(session_factory(engine), clock, _NoDirectory())
        purged = await service.purge_expired(clock.now())
        await relay.drain()
    finally:
        await engine.dispose()
    _log.info("purge finished", extra={"purged": len(purged)})
    return purged


async def _purge_command(settings: Settings, argv: list[str]) -> int:
    purged = await purge(settings)
    print(f"purged {len(purged)} workspace(s)")  # noqa: T201 - the command's one line of output
    return 0


if __name__ == "__main__":
    run_service("workspaces", build, MIGRATIONS, {"purge": _purge_command})
