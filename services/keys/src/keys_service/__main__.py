"""Composition root of the keys service: settings → adapters → serve()."""

from __future__ import annotations

from pathlib import Path

from railguard.keys.v1 import keys_service_pb2, keys_service_pb2_grpc
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

from keys_service.adapters.contracts import contract_modules, scope_grants
from keys_service.adapters.directory import CachedWorkspaceDirectory, GrpcWorkspaceDirectory
from keys_service.adapters.invalidation import NullPublisher, RedisInvalidationPublisher
from keys_service.adapters.peppers import load_pepper_ring
from keys_service.adapters.repository import KeysUnitOfWork
from keys_service.adapters.usage import LastUsedBuffer
from keys_service.domain import ScopePolicy
from keys_service.servicer import KeysServicer
from keys_service.usecases import KeysService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


async def build(settings: Settings) -> Wiring:
    ring = load_pepper_ring(settings)
    policy = ScopePolicy(scope_grants(contract_modules()))
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)

    def uow() -> KeysUnitOfWork:
        return KeysUnitOfWork(sessions)

    channel = open_channel(settings, settings.peers.workspaces)
    directory = CachedWorkspaceDirectory(
        GrpcWorkspaceDirectory(channel), ttl=settings.get_float("KEYS_WORKSPACE_CACHE_SECONDS", 1.0)
    )
    publisher: RedisInvalidationPublisher | NullPublisher = (
        RedisInvalidationPublisher.from_url(settings.redis_url)
        if settings.redis_url
        else NullPublisher()
    )
    usage = LastUsedBuffer(uow, interval=settings.get_float("KEYS_LAST_USED_FLUSH_SECONDS", 5.0))
    usage.start()
    service = KeysService(uow, SystemClock(), ring, policy, directory, publisher, usage)
    registration = Registration(
        keys_service_pb2_grpc.add_KeysServiceServicer_to_server,
        KeysServicer(service),
        keys_service_pb2,
    )
    # on_stop runs in reverse: flush last-used first, dispose of the engine last
    return Wiring(
        [registration], on_stop=[engine.dispose, channel.close, publisher.close, usage.stop]
    )


if __name__ == "__main__":
    run_service("keys", build, MIGRATIONS)
