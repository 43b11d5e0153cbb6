"""devstack.databases: the one helper that makes and drops scratch PostgreSQL databases."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
from devstack.databases import (
    database_url,
    postgres_databases,
    scratch_name,
    sync_postgres_databases,
)
from testkit import postgres_admin_url


async def _exists(admin: str, name: str) -> bool:
    conn = await asyncpg.connect(admin)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def _admin() -> str:
    admin = postgres_admin_url()
    if not admin:
        pytest.skip("RAILGUARD_TEST_POSTGRES_URL not set")
    return admin


def test_names_are_generated_and_refuse_anything_but_plain_parts() -> None:
    a, b = scratch_name("rg_test", "keys"), scratch_name("rg_test", "keys")
    assert a != b and a.startswith("rg_test_keys_")
    for bad in ('x"; DROP DATABASE postgres; --', "Upper", "", "a-b"):
        with pytest.raises(ValueError):
            scratch_name("rg_test", bad)


def test_urls_keep_the_server_and_pick_the_driver() -> None:
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    assert database_url(admin, "d1") == "postgresql+asyncpg://postgres@127.0.0.1:5432/d1"
    assert database_url(admin, "d1", driver="") == "postgresql://postgres@127.0.0.1:5432/d1"


@pytest.mark.postgres
async def test_databases_exist_inside_and_are_dropped_after_even_when_in_use() -> None:
    admin = _admin()
    async with postgres_databases(admin, "rg_test", ["a", "b"]) as urls:
        names = {label: url.rsplit("/", 1)[1] for label, url in urls.items()}
        assert set(names) == {"a", "b"} and names["a"] != names["b"]
        assert all([await _exists(admin, n) for n in names.values()])
        held = await asyncpg.connect(database_url(admin, names["a"], driver=""))
    try:
        assert not any([await _exists(admin, n) for n in names.values()])
    finally:
        await held.close()


@pytest.mark.postgres
def test_the_sync_form_drops_on_an_error_too() -> None:
    import asyncio

    admin = _admin()
    with pytest.raises(RuntimeError), sync_postgres_databases(admin, "rg_test", ["s"], "") as urls:
        name = urls["s"].rsplit("/", 1)[1]
        assert urls["s"].startswith("postgresql://")
        assert asyncio.run(_exists(admin, name))
        raise RuntimeError("the caller failed")
    assert not asyncio.run(_exists(admin, name))
