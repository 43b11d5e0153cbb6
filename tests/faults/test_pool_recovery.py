"""The connection pool recovers by itself when PostgreSQL restarts: no request meets a dead one."""

from __future__ import annotations

import asyncio

import pytest
from servicekit.db import create_engine, dispose_engine
from sqlalchemy import text
from testkit.own_servers import OwnPostgres

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


async def test_the_first_query_after_a_database_restart_succeeds(
    own_postgres: OwnPostgres,
) -> None:
    import asyncpg  # type: ignore[import-untyped]

    admin = await asyncpg.connect(own_postgres.admin_url)
    try:
        await admin.execute('CREATE DATABASE "rg_pool"')
    finally:
        await admin.close()
    url = own_postgres.admin_url.rsplit("/", 1)[0] + "/rg_pool"
    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=2)
    try:
        async with engine.connect() as conn:  # a pooled connection to the old server
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        await asyncio.to_thread(own_postgres.stop, "fast")
        await asyncio.to_thread(own_postgres.start)
        async with engine.connect() as conn:  # the checkout hook replaces the dead connection
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await dispose_engine(engine)
