"""Key-manager fixtures: every backend behind one factory, and the transit-compatible test server.

The real-Vault parameter runs only when VAULT_ADDR and VAULT_TOKEN are set (with a transit engine
at VAULT_TRANSIT_MOUNT, default "transit"); otherwise it is reported as skipped, never passed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests
from servicekit.kms import (
    KeyManager,
    LocalKeyring,
    MasterKey,
    TokenAuth,
    VaultTransit,
    VaultTransitConfig,
)
from servicekit.kms import local_keyring as local_internals
from testkit.vault_transit_server import VaultTransitServer

MakeKeyManager = Callable[..., Awaitable[KeyManager]]

REAL_VAULT_ADDR = os.environ.get("VAULT_ADDR", "")
REAL_VAULT_TOKEN = os.environ.get("VAULT_TOKEN", "")
REAL_VAULT_MOUNT = os.environ.get("VAULT_TRANSIT_MOUNT", "transit")
_REAL_VAULT = bool(REAL_VAULT_ADDR and REAL_VAULT_TOKEN)
_NO_REAL_VAULT = "real Vault not configured: set VAULT_ADDR and VAULT_TOKEN to run this backend"


def service_policy(key: str, mount: str = "transit") -> dict[str, list[str]]:
    """Least privilege for a service (reference §1.7): no "create", so encrypt cannot upsert."""
    return {
        f"{mount}/encrypt/{key}": ["update"],
        f"{mount}/decrypt/{key}": ["update"],
        f"{mount}/rewrap/{key}": ["update"],
        f"{mount}/keys/{key}": ["read"],
        f"{mount}/keys/{key}/rotate": ["update"],
        f"{mount}/keys/{key}/config": ["update"],
    }


@pytest.fixture
def vault_server() -> Iterator[VaultTransitServer]:
    with VaultTransitServer() as server:
        yield server


def _admin(address: str, token: str) -> Any:
    session = requests.Session()
    session.trust_env = False
    return hvac.Client(url=address, token=token, session=session)


@pytest.fixture(
    params=[
        "local",
        "vault-test-server",
        pytest.param(
            "vault-real",
            marks=[pytest.mark.vault, pytest.mark.skipif(not _REAL_VAULT, reason=_NO_REAL_VAULT)],
        ),
    ]
)
async def make_key_manager(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MakeKeyManager]:
    """``await make_key_manager(derived=True)`` → a fresh key on the parametrized backend."""
    backend: str = request.param
    managers: list[KeyManager] = []
    keys: list[str] = []
    server: VaultTransitServer | None = None
    admin: Any = None
    if backend == "vault-test-server":
        server = VaultTransitServer().start()
        admin = _admin(server.address, server.root_token)
    elif backend == "vault-real":
        admin = _admin(REAL_VAULT_ADDR, REAL_VAULT_TOKEN)

    async def make(*, derived: bool = True) -> KeyManager:
        manager: KeyManager
        if backend == "local":
            master = MasterKey.generate()
            path = tmp_path / f"keyring-{len(managers)}.json"
            if not derived:
                state = replace(local_internals._State.new("credentials"), derived=False)
                path.write_bytes(local_internals._seal_file(state, master))
                path.chmod(0o600)
            manager = LocalKeyring(path, master, key_name="credentials")
        else:
            name = f"railguard-test-{secrets.token_hex(6)}"
            mount = REAL_VAULT_MOUNT if backend == "vault-real" else "transit"
            await asyncio.to_thread(
                admin.secrets.transit.create_key, name, derived=derived, mount_point=mount
            )
            keys.append(name)
            if server is not None:
                address, token = server.address, server.create_token(service_policy(name))
            else:
                address, token = REAL_VAULT_ADDR, REAL_VAULT_TOKEN
            config = VaultTransitConfig(address, TokenAuth(token), name, mount_point=mount)
            manager = VaultTransit(config)
        managers.append(manager)
        return manager

    yield make

    for manager in managers:
        await manager.close()
    if backend == "vault-real":
        for name in keys:
            transit = admin.secrets.transit
            transit.update_key_configuration(
                name, deletion_allowed=True, mount_point=REAL_VAULT_MOUNT
            )
            transit.delete_key(name, mount_point=REAL_VAULT_MOUNT)
    if admin is not None:
        admin.adapter.close()
    if server is not None:
        server.stop()
