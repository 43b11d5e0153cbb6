"""The fault suite's world: its own PostgreSQL, Redis and Vault transit server, and the stack on them.

Nothing here touches the machine's shared PostgreSQL or Redis: the suite stops and kills its
dependencies. It runs in CI (CI=true) and fails there, loudly, when the PostgreSQL binaries
(initdb, pg_ctl under /usr/lib/postgresql/*/bin) or redis-server are missing; elsewhere it skips.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devstack import Stack, StackPorts
from testkit.own_servers import OwnPostgres, OwnRedis, postgres_bin_dir
from testkit.vault_transit_server import VaultTransitServer

SERVICES = ("auth", "workspaces", "keys", "credentials")
_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    message = f"the fault suite needs {what}"
    if _CI:
        pytest.fail(f"CI=true: {message}; install it (the suite is required in CI)", pytrace=False)
    pytest.skip(message)


@dataclass
class World:
    stack: Stack
    postgres: OwnPostgres
    redis: OwnRedis
    vault: VaultTransitServer
    root: Path


async def _create_databases(admin_url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url)
    try:
        for name in SERVICES:
            await conn.execute(f'CREATE DATABASE "rg_{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="package")
def fault_root() -> Iterator[Path]:
    # not under pytest's tmp folder: that is 0700 root, and PostgreSQL runs as its own user
    root = Path(tempfile.mkdtemp(prefix="rg-faults-"))
    root.chmod(0o711)  # the postgres user must reach its own folder inside
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def own_postgres(fault_root: Path) -> Iterator[OwnPostgres]:
    """The suite's own PostgreSQL (initdb in a temp folder, a free port)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        _missing("PostgreSQL's initdb and pg_ctl (/usr/lib/postgresql/*/bin)")
    assert bin_dir is not None
    postgres = OwnPostgres(fault_root / "pg", bin_dir)
    try:
        postgres.init()
        postgres.start()
        yield postgres
    finally:
        if postgres.running():
            postgres.stop("immediate")


@pytest.fixture(scope="package")
def world(fault_root: Path, own_postgres: OwnPostgres) -> Iterator[World]:
    if shutil.which("redis-server") is None:
        _missing("redis-server")
    root, postgres = fault_root, own_postgres
    redis = OwnRedis(root / "redis")
    vault = VaultTransitServer()
    stack: Stack | None = None
    try:
        redis.start()
        vault.start()
        vault.create_key("railguard", derived=True)
        token_file = root / "vault-token"
        token_file.write_text(vault.root_token)
        token_file.chmod(0o600)
        asyncio.run(_create_databases(postgres.admin_url))
        base = postgres.admin_url.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        kms = f"vault+http://{vault.address.removeprefix('http://')}/transit/railguard"
        stack = Stack(
            root / "stack",
            ports=StackPorts.free(),
            services=SERVICES,
            env={
                "RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100",
                "RAILGUARD_LOG_LEVEL": "WARNING",
                "RAILGUARD_REDIS_URL": redis.url,
                "RAILGUARD_KMS_URL": f"{kms}?auth=token&token_file={token_file}&timeout=2",
                "RAILGUARD_GRACE_SECONDS": "3",
                # a shared database needs explicit key material so every replica agrees
                "RAILGUARD_KEYS_PEPPERS": "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
                "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": base64.b64encode(
                    secrets.token_bytes(32)
                ).decode(),
                "RAILGUARD_EDGE_KEY_CACHE_SECONDS": "30",  # revocation must come by fan-out
            },
            database_urls={name: f"{base}/rg_{name}" for name in SERVICES},
        )
        try:
            stack.start(timeout=90)
        except Exception as exc:
            logs = {p.name: p.read_text()[-1500:] for p in (root / "stack").glob("*.log")}
            raise RuntimeError(f"the stack did not start: {logs}") from exc
        yield World(stack, postgres, redis, vault, root)
    finally:
        if stack is not None:
            stack.stop()
        vault.stop()
        redis.stop()
