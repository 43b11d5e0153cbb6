"""Disposing of an engine while a call still holds a connection closes that connection too.

``AsyncEngine.dispose()`` closes the pooled connections only: one checked out at that moment goes
back to the discarded pool afterwards and stays open (an idle PostgreSQL session until the process
exits). A stopping server disposes of its engine while its last calls finish, so
``dispose_engine`` waits for them first.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from servicekit.db import create_engine, dispose_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def _dispose_mid_call(url: str, dispose: Callable[[AsyncEngine], Awaitable[None]]) -> Any:
    """The asyncpg connection of a call still running when ``dispose`` starts."""
    engine = create_engine(url)
    held: list[Any] = []
    checked_out = asyncio.Event()

    async def call() -> None:
        async with engine.connect() as conn:
            held.append((await conn.get_raw_connection()).driver_connection)
            checked_out.set()
            await conn.execute(text("SELECT pg_sleep(0.3)"))

    task = asyncio.create_task(call())
    await checked_out.wait()
    await dispose(engine)
    await task
    return held[0]


async def test_dispose_engine_closes_the_connection_a_finishing_call_gives_back(
    postgres_url: str,
) -> None:
    conn = await _dispose_mid_call(postgres_url, dispose_engine)
    assert conn.is_closed()


async def test_a_bare_dispose_leaves_it_open_which_is_why_dispose_engine_exists(
    postgres_url: str,
) -> None:
    conn = await _dispose_mid_call(postgres_url, lambda engine: engine.dispose())
    try:
        assert not conn.is_closed()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            await conn.close()
