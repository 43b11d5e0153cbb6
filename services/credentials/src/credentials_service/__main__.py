"""Composition root of the credentials service: settings → adapters → serve().

``python -m credentials_service [serve|migrate]`` runs the service (through ``run_service``);
``python -m credentials_service rewrap [--batch-size N] [--resume]`` rotates the encryption key,
re-seals every stored ciphertext under the new version (the plaintext never leaves the key
manager) and then raises ``min_decryption_version``. ``--resume`` continues an interrupted run
without rotating again. ``python -m credentials_service purge`` runs the retention job once
(destroys the secret material of items whose window has ended, keeping tombstones), relays its
audit events if the workspaces service answers, and exits; schedule it, e.g. daily.

Audit events go to the ``credentials_audit_outbox`` table in each change's transaction; an
``AuditRelay`` started in ``build`` ships them to the workspaces service (``AppendAuditEvents``,
mTLS identity ``credentials``).

Settings: the shared ``servicekit.Settings`` and the service's own
:class:`~credentials_service.config.CredentialsSettings` (names, defaults and meanings:
``servicekit.catalog``); the embedded key material: adapters/key_material.py, docs/credentials.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TextIO

from railguard.credentials.v1 import credentials_service_pb2, credentials_service_pb2_grpc
from servicekit import (
    AuditRelay,
    Clock,
    Registration,
    Settings,
    Wiring,
    open_channel,
    run_service,
)
from servicekit.composition import (
    job_storage,
    open_storage,
    run_audited_job,
    serving_collaborators,
    start_audit_relay,
)
from servicekit.kms import KeyManager
from servicekit.lifecycle import LifecycleApplier, WorkspaceGate
from servicekit.migrations import versions_folder
from servicekit.usecase import Collaborators
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from credentials_service.adapters.key_material import key_manager, token_hasher
from credentials_service.adapters.lifecycle import (
    destroy_workspace_secrets,
    record_workspace_purge,
)
from credentials_service.adapters.repository import SqlCredentialsUnitOfWork
from credentials_service.adapters.tables import AUDIT_OUTBOX, LIFECYCLE
from credentials_service.config import CredentialsSettings
from credentials_service.servicer import CredentialsServicer
from credentials_service.usecases import (
    CredentialsRetention,
    CredentialUseCases,
    DeliveryUseCases,
    Deps,
    KeyRotation,
    RewrapReport,
    WebhookTriggerUseCases,
)

MIGRATIONS = versions_folder(__file__)
_log = logging.getLogger("credentials_service")


def _servicer(
    settings: Settings,
    own: CredentialsSettings,
    kms: KeyManager,
    sessions: async_sessionmaker[AsyncSession],
    lifecycle: LifecycleApplier,
    relay_poke: Callable[[], None],
) -> CredentialsServicer:
    """The use cases of every capability on one set of adapters, behind the servicer."""
    shared = serving_collaborators(sessions, SqlCredentialsUnitOfWork, relay_poke)
    deps = Deps(shared, WorkspaceGate(sessions, LIFECYCLE), own.retention_days)
    hasher = token_hasher(settings, own.webhook_pepper)
    triggers = WebhookTriggerUseCases(deps, kms, hasher)
    credentials, deliveries = (
        CredentialUseCases(deps, kms),
        DeliveryUseCases(deps, hasher, triggers),
    )
    return CredentialsServicer(credentials, triggers, deliveries, lifecycle)


async def build(settings: Settings) -> Wiring:
    own = CredentialsSettings.load(settings)
    kms = key_manager(settings)
    await kms.self_check()  # fail fast: a missing, non-derived or unreachable key stops start-up
    relay: AuditRelay | None = None

    def poke() -> None:
        if relay is not None:
            relay.poke()

    storage = open_storage(settings)
    lifecycle = LifecycleApplier(
        storage.sessions,
        LIFECYCLE,
        destroy_workspace_secrets,
        after_purge=record_workspace_purge,
        after_commit=poke,
    )
    # settings are read (and refused) before anything is started
    servicer = _servicer(settings, own, kms, storage.sessions, lifecycle, poke)
    channel = open_channel(settings, settings.peers.workspaces)
    relay = start_audit_relay(settings, storage.sessions, AUDIT_OUTBOX, channel)
    registration = Registration(
        credentials_service_pb2_grpc.add_CredentialsServiceServicer_to_server,
        servicer,
        credentials_service_pb2,
    )
    # on_stop runs in reverse: the relay stops first, the engine is disposed of last
    return Wiring([registration], on_stop=[storage.close, kms.close, channel.close, relay.stop])


async def purge(settings: Settings, clock: Clock | None = None) -> tuple[list[str], list[str]]:
    """Run the retention job once and try to relay its audit events; the purged credential and
    trigger ids. Needs no key manager: nothing is decrypted."""
    days = CredentialsSettings.load(settings).retention_days

    async def job(
        sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> tuple[list[str], list[str]]:
        deps = Collaborators(uow=lambda: SqlCredentialsUnitOfWork(sessions), clock=clock)
        return await CredentialsRetention(deps, days).purge_expired()

    purged = await run_audited_job(settings, AUDIT_OUTBOX, job, clock)
    _log.info("purge finished", extra={"credentials": len(purged[0]), "triggers": len(purged[1])})
    return purged


async def _purge_command(settings: Settings, argv: list[str]) -> int:
    """Run the retention job once: destroy the secret material of items past their window."""
    credentials, triggers = await purge(settings)
    # the command's one line of output
    print(f"purged {len(credentials)} credential(s), {len(triggers)} webhook trigger(s)")  # noqa: T201
    return 0


class ProgressBar:
    """``credentials [##########----------] 120/240`` redrawn in place on a terminal stream."""

    def __init__(self, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.out, self.width = out, width

    def __call__(self, kind: str, done: int, total: int) -> None:
        filled = self.width if total == 0 else self.width * done // total
        bar = "#" * filled + "-" * (self.width - filled)
        end = "\n" if done >= total else ""
        self.out.write(f"\r{kind:<17} [{bar}] {done}/{total}{end}")
        self.out.flush()


async def rewrap(
    settings: Settings, batch_size: int, *, resume: bool = False, out: TextIO = sys.stderr
) -> RewrapReport:
    kms = key_manager(settings)
    try:
        await kms.self_check()
        async with job_storage(settings) as storage:
            sessions = storage.sessions
            report = await KeyRotation(lambda: SqlCredentialsUnitOfWork(sessions), kms).rewrap(
                batch_size=batch_size, rotate=not resume, progress=ProgressBar(out)
            )
    finally:
        await kms.close()
    out.write(
        f"key version {report.key_version}: {report.rewrapped} rewrapped, {report.skipped} "
        f"changed meanwhile, {report.failed} failed; min_decryption_version "
        f"{report.min_decryption_version}\n"
    )
    return report


async def _rewrap_command(settings: Settings, argv: list[str]) -> int:
    """Rotate the encryption key and re-seal every stored secret under the new version.

    options: --batch-size N (rows per transaction, 1-1000, default 100); --resume (continue an
    interrupted run without rotating again)
    """
    parser = argparse.ArgumentParser(prog="python -m credentials_service rewrap")
    parser.add_argument("--batch-size", type=int, default=100, help="rows per transaction (1-1000)")
    parser.add_argument("--resume", action="store_true", help="continue without rotating again")
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be 1 to 1000")
    report = await rewrap(settings, args.batch_size, resume=args.resume)
    return 1 if report.failed else 0


if __name__ == "__main__":
    run_service(
        "credentials", build, MIGRATIONS, {"purge": _purge_command, "rewrap": _rewrap_command}
    )
