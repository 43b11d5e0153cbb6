"""Concurrent migrations are serialized by a PostgreSQL advisory lock.

Three ``python -m <svc>_service migrate`` processes start at once against one fresh database (as
three pods or a Job and two pods would): exactly one runs the revisions, the other two wait for
it and find nothing to do, and all three succeed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from testkit import fresh_database, postgres_admin_url

pytestmark = pytest.mark.postgres


async def _migrate(service: str, url: str, state: Path) -> tuple[int, str]:
    env = {
        **os.environ,
        "RAILGUARD_DATABASE_URL": url,
        "RAILGUARD_STATE_DIR": str(state),
        "RAILGUARD_LOG_LEVEL": "INFO",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"{service}_service",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.parametrize("service", ["keys", "workspaces"])
async def test_three_concurrent_migrations_one_migrates_all_succeed(
    service: str, tmp_path: Path
) -> None:
    if not postgres_admin_url():
        pytest.skip("RAILGUARD_TEST_POSTGRES_URL not set")
    async with fresh_database("postgres", tmp_path, f"mig{service}") as url:
        results = await asyncio.gather(*(_migrate(service, url, tmp_path) for _ in range(3)))
        for code, out in results:
            assert code == 0, out[-2000:]
        migrated = [out for _, out in results if "Running upgrade" in out]
        assert len(migrated) == 1, [out[-600:] for _, out in results]
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            table = {"keys": "alembic_version_keys", "workspaces": "alembic_version_workspaces"}
            versions = await conn.fetch(f"SELECT version_num FROM {table[service]}")  # noqa: S608
        finally:
            await conn.close()
        assert len(versions) == 1
