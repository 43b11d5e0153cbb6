"""A real credentials server: the production composition root, mTLS, SQLite and PostgreSQL, and
both key-manager backends (the local keyring, and Vault transit through the test server)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from credentials_service.__main__ import MIGRATIONS, build
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2_grpc
from servicekit import Settings
from servicekit.devca import ensure_dev_pki
from servicekit.kms import MasterKey
from testkit import (
    VaultTransitServer,
    channel_as,
    fakes,
    running,
    test_settings,
)

PEPPER = base64.b64encode(b"credentials-test-pepper-32-bytes").decode()
KEY = "credentials"


def vault_policy(key: str = KEY, mount: str = "transit") -> dict[str, list[str]]:
    """The service's least privilege (no "create": encrypt cannot upsert a key), plus the
    rotate/config rights the rewrap command needs."""
    return {
        f"{mount}/encrypt/{key}": ["update"],
        f"{mount}/decrypt/{key}": ["update"],
        f"{mount}/rewrap/{key}": ["update"],
        f"{mount}/keys/{key}": ["read"],
        f"{mount}/keys/{key}/rotate": ["update"],
        f"{mount}/keys/{key}/config": ["update"],
    }


@dataclass
class CredentialsServer:
    port: int
    pki: Path
    settings: Settings
    backend: str
    vault: VaultTransitServer | None
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def stub(self, identity: str = "edge") -> credentials_service_pb2_grpc.CredentialsServiceStub:
        channel = channel_as(identity, self.pki, self.port)
        self.channels.append(channel)
        return credentials_service_pb2_grpc.CredentialsServiceStub(channel)

    def sqlite_files(self) -> list[Path]:
        url = self.settings.database_url
        if not url.startswith("sqlite"):
            return []
        db = Path(url.split(":///", 1)[1])
        return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def md(
    user: str = "alice", ws: str = "ws_a", role: int = access_pb2.ROLE_ADMIN, client_ip: str = ""
) -> Any:
    return fakes.as_user(user, ws, role, client_ip=client_ip)


def error_info(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, list[str]]:
    """The code, the ErrorInfo reason and the field-violation paths of a failed call."""
    failure = fakes.error_info(err)
    return failure.code, failure.reason, failure.fields


@pytest.fixture(scope="session")
def runtime_pki(pki: Path) -> Path:
    """The shared test PKI plus a certificate for the internal "runtime" caller."""
    return ensure_dev_pki(pki, ("runtime",))


@pytest.fixture
def vault() -> Iterator[VaultTransitServer]:
    with VaultTransitServer() as server:
        server.create_key(KEY, derived=True)
        yield server


def kms_url(backend: str, tmp_path: Path, vault: VaultTransitServer | None) -> str:
    if backend == "local":
        master = tmp_path / "kms-master-key"
        if not master.exists():
            MasterKey.generate().write_file(master)
        return f"local://{tmp_path / 'keyring.json'}?master_key_file={master}&key={KEY}"
    assert vault is not None
    token_file = tmp_path / "vault-token"
    token_file.write_text(vault.create_token(vault_policy()))
    host = vault.address.split("://", 1)[1]
    return f"vault+http://{host}/transit/{KEY}?auth=token&token_file={token_file}&timeout=5"


@pytest.fixture(params=["local", "vault"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def credentials_server(
    runtime_pki: Path, database_url: str, backend: str, tmp_path: Path, request: Any
) -> AsyncIterator[CredentialsServer]:
    vault = request.getfixturevalue("vault") if backend == "vault" else None
    extra = {
        "RAILGUARD_KMS_URL": kms_url(backend, tmp_path, vault),
        "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": PEPPER,
        "RAILGUARD_STATE_DIR": str(tmp_path / "state"),
    }
    settings = test_settings("credentials", runtime_pki, database_url, extra)
    async with running(settings, build, MIGRATIONS) as server:
        srv = CredentialsServer(server.port, runtime_pki, settings, backend, vault)
        try:
            yield srv
        finally:
            for channel in srv.channels:
                await channel.close()
