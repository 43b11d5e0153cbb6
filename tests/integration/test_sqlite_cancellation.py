"""A statement cancelled mid-flight on the embedded SQLite leaves nothing behind.

SQLAlchemy invalidates the connection of a task cancelled inside a statement and terminates it;
with aiosqlite its default terminate could leave a task waiting forever for the connection's
worker thread, which hung the event loop's shutdown (see ``servicekit.db``).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from servicekit import create_engine
from servicekit.db import dispose_engine
from sqlalchemy import text

_SLOW = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000) "
    "SELECT count(*) FROM n"
)


async def _cancel_mid_statement(url: str, leftovers: list[str]) -> None:
    engine = create_engine(url)
    for _ in range(3):

        async def slow() -> None:
            async with engine.connect() as conn:
                await conn.execute(_SLOW)

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.1)  # the statement runs in the connection's thread
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    async with engine.connect() as conn:  # the pool still serves
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    await dispose_engine(engine)
    await asyncio.sleep(0.5)
    current = asyncio.current_task()
    leftovers.extend(repr(t) for t in asyncio.all_tasks() if t is not current)


def test_a_cancelled_statement_leaves_no_task_and_the_loop_shuts_down(tmp_path: Path) -> None:
    leftovers: list[str] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_cancel_mid_statement(f"sqlite+aiosqlite:///{tmp_path / 'db'}", leftovers))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the event loop did not shut down"
    assert not failure, failure
    assert leftovers == [], "tasks left waiting after the cancellation"
