"""Run real services in-process on port 0 with mutual TLS, and build clients that call them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import grpc
from servicekit.context import Principal
from servicekit.migrations import upgrade
from servicekit.runtime import Wiring
from servicekit.server import RunningServer, start_server
from servicekit.settings import Settings, load_settings
from servicekit.tls import TlsFiles, client_credentials


def test_settings(
    service: str, pki: Path, database_url: str = "", extra: Mapping[str, str] | None = None
) -> Settings:
    """Settings for a service under test: its dev certificate, a port-0 listener, the given database."""
    env = {
        "RAILGUARD_LISTEN": "127.0.0.1:0",
        "RAILGUARD_CERTS_DIR": str(pki),
        "RAILGUARD_STATE_DIR": str(pki.parent / "state"),
        "RAILGUARD_GRACE_SECONDS": "0.2",
        **({"RAILGUARD_DATABASE_URL": database_url} if database_url else {}),
        **(extra or {}),
    }
    return load_settings(service, env)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test to collect


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    build: Callable[[Settings], Awaitable[Wiring]],
    migrations: Path | None = None,
) -> AsyncIterator[RunningServer]:
    """Migrate, wire and start a service; stop it gracefully afterwards."""
    if migrations is not None:
        await upgrade(settings.database_url, settings.service_name, migrations)
    wiring = await build(settings)
    server = await start_server(settings, wiring.registrations, on_stop=wiring.on_stop)
    try:
        yield server
    finally:
        await server.stop()


def channel_as(identity: str, pki: Path, port: int, *, rogue: bool = False) -> grpc.aio.Channel:
    """A client channel presenting ``identity``'s certificate (or the rogue CA's, to prove refusal)."""
    folder = pki.parent / "rogue" if rogue else pki
    files = TlsFiles(folder / f"{identity}.crt", folder / f"{identity}.key", pki / "ca.crt")
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", client_credentials(files))


def channel_without_client_cert(pki: Path, port: int) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.crt").read_bytes())
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)


def principal_metadata(principal: Principal) -> tuple[tuple[str, bytes | str], ...]:
    from servicekit.clients import outgoing_metadata

    return outgoing_metadata(principal, "test-request")
