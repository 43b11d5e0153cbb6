"""Composition root of the keys service: settings → adapters → serve().

``python -m keys_service [serve|migrate|purge]``: ``purge`` runs the retention job once (destroys
the digests of every key deleted more than ``RAILGUARD_KEYS_RETENTION_DAYS`` ago, keeping a
tombstone), relays its audit events if the workspaces service answers, and exits; schedule it,
e.g. daily. Events it cannot relay stay in the outbox for the serving replicas' relay.
"""

from __future__ import annotations

import argparse
import logging
import sys

from railguard.keys.v1 import keys_service_pb2, keys_service_pb2_grpc
from servicekit import (
    Clock,
    Registration,
    Settings,
    Wiring,
    changefeed,
    open_channel,
    run_service,
)
from servicekit.changefeed import ChangeFeed
from servicekit.composition import (
    job_storage,
    open_storage,
    run_audited_job,
    serving_collaborators,
    start_audit_relay,
)
from servicekit.lifecycle import LifecycleApplier
from servicekit.migrations import versions_folder
from servicekit.usecase import Collaborators
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keys_service.adapters.contracts import contract_modules, scope_grants
from keys_service.adapters.directory import CachedWorkspaceDirectory, GrpcWorkspaceDirectory
from keys_service.adapters.invalidation import NullPublisher, RedisInvalidationPublisher
from keys_service.adapters.key_cache import followed_cache
from keys_service.adapters.lifecycle import destroy_workspace_keys, record_workspace_purge
from keys_service.adapters.pepper_admin import add_pepper, pepper_file, pepper_usage, retire_pepper
from keys_service.adapters.peppers import load_pepper_ring
from keys_service.adapters.repository import SqlKeysUnitOfWork, record_workspace_change
from keys_service.adapters.tables import AUDIT_OUTBOX, CHANGE_LOG, LIFECYCLE
from keys_service.adapters.usage import LastUsedBuffer
from keys_service.config import KeysSettings
from keys_service.domain import ScopePolicy
from keys_service.servicer import KeysServicer
from keys_service.usecases import AllowedOrigins, KeysDeps, KeysRetention, KeysService

MIGRATIONS = versions_folder(__file__)
_log = logging.getLogger("keys_service")


async def build(settings: Settings) -> Wiring:
    config = KeysSettings.load(settings)
    ring = load_pepper_ring(settings)
    policy = ScopePolicy(scope_grants(contract_modules()))
    storage = open_storage(settings)
    sessions = storage.sessions
    channel = open_channel(settings, settings.peers.workspaces)
    directory = CachedWorkspaceDirectory(
        GrpcWorkspaceDirectory(channel), ttl=config.workspace_cache_seconds
    )
    publisher: RedisInvalidationPublisher | NullPublisher = (
        RedisInvalidationPublisher.from_url(settings.redis_url)
        if settings.redis_url
        else NullPublisher()
    )
    # audit events leave through the same mTLS channel (AppendAuditEvents, caller "keys")
    relay = start_audit_relay(settings, sessions, AUDIT_OUTBOX, channel)
    shared = serving_collaborators(sessions, SqlKeysUnitOfWork, relay.poke)
    usage = LastUsedBuffer(shared.uow, interval=config.last_used_flush_seconds)
    usage.start()
    feed = ChangeFeed(sessions, CHANGE_LOG)
    follower, stored = followed_cache(feed, config.verify_cache_entries)
    deps = KeysDeps(
        shared, ring, policy, directory, publisher, usage, config.retention, stored=stored
    )
    service = KeysService(deps)
    lifecycle = LifecycleApplier(
        sessions,
        LIFECYCLE,
        destroy_workspace_keys,
        after_purge=record_workspace_purge,
        after_commit=relay.poke,
        on_applied=record_workspace_change,
    )
    registration = Registration(
        keys_service_pb2_grpc.add_KeysServiceServicer_to_server,
        KeysServicer(service, lifecycle, AllowedOrigins(shared.reader, shared.clock)),
        keys_service_pb2,
    )
    # on_stop runs in reverse: stop the relay and flush last-used first, dispose of the engine last
    return changefeed.wiring(
        registration,
        sessions,
        CHANGE_LOG,
        [
            storage.close,
            channel.close,
            publisher.close,
            usage.stop,
            relay.stop,
            follower.close,
        ],
        feed,
    )


async def purge(settings: Settings, clock: Clock | None = None) -> list[str]:
    """Run the retention job once and try to relay its audit events; the purged key ids."""
    window = KeysSettings.load(settings).retention

    async def job(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> list[str]:
        deps = Collaborators(uow=lambda: SqlKeysUnitOfWork(sessions), clock=clock)
        return await KeysRetention(deps, window).purge_expired()

    purged = await run_audited_job(settings, AUDIT_OUTBOX, job, clock)
    _log.info("purge finished", extra={"purged": len(purged)})
    return purged


async def _purge_command(settings: Settings, argv: list[str]) -> int:
    """Run the retention job once: destroy the digests of keys deleted longer ago than
    RAILGUARD_KEYS_RETENTION_DAYS (tombstones stay), relay its audit events, exit."""
    purged = await purge(settings)
    print(f"purged {len(purged)} API key(s)")  # noqa: T201 - the command's one line of output
    return 0


async def _peppers_command(settings: Settings, argv: list[str]) -> int:
    """List, add or retire API-key pepper versions (see keys_service/adapters/pepper_admin.py).

    peppers list            the versions, the current one, and how many keys each still hashes
    peppers add             a new current version (printed to append to RAILGUARD_KEYS_PEPPERS
                            when the ring comes from settings; else written to the state file)
    peppers retire V        drop version V once no key uses it (--force: even if some do)
    Restart (roll) the keys replicas afterwards: they load the ring at start.
    """
    parser = argparse.ArgumentParser(prog="python -m keys_service peppers")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list")
    verbs.add_parser("add")
    retire = verbs.add_parser("retire")
    retire.add_argument("version", type=int)
    retire.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        ring = load_pepper_ring(settings)
        if args.verb == "add":
            version, entry = add_pepper(settings)
            if entry is not None:
                print(f"append to RAILGUARD_KEYS_PEPPERS, then roll the keys replicas:\n{entry}")  # noqa: T201
            else:
                print(f"pepper v{version} added to {pepper_file(settings)}; restart keys")  # noqa: T201
            return 0
        async with job_storage(settings) as storage:
            usage = await pepper_usage(storage.sessions)
        if args.verb == "list":
            for v in sorted(ring.versions):
                current = " (current)" if v == ring.current_version else ""
                print(f"v{v}{current}: {usage.get(v, 0)} key(s)")  # noqa: T201
            return 0
        in_use = usage.get(args.version, 0)
        if in_use and not args.force:
            print(  # noqa: T201
                f"not retired: {in_use} key(s) still hash with v{args.version}; they move to the "
                "current pepper on their next use (or pass --force: they stop working)",
                file=sys.stderr,
            )
            return 1
        if retire_pepper(settings, args.version):
            print(f"pepper v{args.version} retired from {pepper_file(settings)}; restart keys")  # noqa: T201
        else:
            print(  # noqa: T201
                f"v{args.version} is unused: remove its entry from RAILGUARD_KEYS_PEPPERS, "
                "then roll the keys replicas"
            )
        return 0
    except (ValueError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1


if __name__ == "__main__":
    run_service("keys", build, MIGRATIONS, {"purge": _purge_command, "peppers": _peppers_command})
