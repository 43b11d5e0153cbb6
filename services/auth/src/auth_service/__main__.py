"""Composition root of the auth service: settings → adapters → serve().

Service settings (``RAILGUARD_*``; defaults in brackets):
``AUTH_ACCESS_TOKEN_TTL_SECONDS`` [600], ``AUTH_REFRESH_IDLE_SECONDS`` [14 d],
``AUTH_REFRESH_ABSOLUTE_SECONDS`` [30 d], ``AUTH_REFRESH_GRACE_SECONDS`` [10],
``AUTH_KEY_ROTATION_SECONDS`` [30 d], ``AUTH_JWKS_CACHE_SECONDS`` [600],
``AUTH_MAINTENANCE_SECONDS`` [60], ``AUTH_ARGON2_MEMORY_KIB`` / ``_TIME_COST`` / ``_PARALLELISM``
[19456 / 2 / 1, raised to that floor], ``AUTH_HASH_CONCURRENCY`` [CPU count],
``AUTH_SIGNING_KEK`` [unset: ``<state_dir>/auth-signing.kek``, created 0600].
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from pathlib import Path

from railguard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from servicekit import (
    Registration,
    Settings,
    SystemClock,
    Wiring,
    create_engine,
    run_service,
    session_factory,
)

from auth_service.adapters.common_passwords import load_common_passwords
from auth_service.adapters.jwt_signer import Ed25519JwtSigner
from auth_service.adapters.password_hasher import Argon2Hasher, Argon2Params
from auth_service.adapters.repository import AuthUnitOfWork
from auth_service.adapters.sealer import LocalKekSealer, load_kek
from auth_service.domain import RotationPolicy, SessionPolicy
from auth_service.servicer import AuthServicer
from auth_service.usecases import AuthConfig, AuthService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"

_log = logging.getLogger("auth_service")


def load_config(settings: Settings) -> AuthConfig:
    def seconds(name: str, default: float) -> dt.timedelta:
        return dt.timedelta(seconds=settings.get_float(name, default))

    access_ttl = seconds("AUTH_ACCESS_TOKEN_TTL_SECONDS", 600)
    return AuthConfig(
        issuer=settings.issuer,
        audience=settings.audience,
        access_token_ttl=access_ttl,
        sessions=SessionPolicy(
            idle=seconds("AUTH_REFRESH_IDLE_SECONDS", 14 * 86400),
            absolute=seconds("AUTH_REFRESH_ABSOLUTE_SECONDS", 30 * 86400),
            grace=seconds("AUTH_REFRESH_GRACE_SECONDS", 10),
        ),
        rotation=RotationPolicy(
            interval=seconds("AUTH_KEY_ROTATION_SECONDS", 30 * 86400),
            jwks_cache=seconds("AUTH_JWKS_CACHE_SECONDS", 600),
            access_token_ttl=access_ttl,
        ),
    )


async def _maintain(service: AuthService, every: float) -> None:
    """Rotate signing keys when due and drop expired grace secrets, forever."""
    while True:
        await asyncio.sleep(every)
        try:
            await service.rotate_signing_keys()
            await service.forget_grace_secrets()
        except Exception:
            _log.exception("auth maintenance failed; retrying next period")


async def build(settings: Settings) -> Wiring:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    hasher = await Argon2Hasher.create(
        Argon2Params(
            settings.get_int("AUTH_ARGON2_MEMORY_KIB", 19456),
            settings.get_int("AUTH_ARGON2_TIME_COST", 2),
            settings.get_int("AUTH_ARGON2_PARALLELISM", 1),
        ),
        settings.get_int("AUTH_HASH_CONCURRENCY", 0) or None,
    )
    # The one line to change when servicekit.kms is ready: pass the KeyManager instead.
    sealer = LocalKekSealer(load_kek(settings.get("AUTH_SIGNING_KEK"), settings.state_dir))
    service = AuthService(
        lambda: AuthUnitOfWork(sessions),
        SystemClock(),
        hasher,
        load_common_passwords(),
        sealer,
        Ed25519JwtSigner(),
        load_config(settings),
    )
    await service.rotate_signing_keys()
    maintenance = asyncio.create_task(
        _maintain(service, settings.get_float("AUTH_MAINTENANCE_SECONDS", 60))
    )

    async def stop_maintenance() -> None:
        maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintenance

    registration = Registration(
        auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
        AuthServicer(service),
        auth_service_pb2,
    )
    return Wiring([registration], on_stop=[stop_maintenance, engine.dispose])


if __name__ == "__main__":
    run_service("auth", build, MIGRATIONS)
