"""The Alembic environment shared by every service (configured by servicekit.migrations).

On PostgreSQL the whole upgrade runs in one transaction that first takes a transaction-level
advisory lock keyed by the service's version table: concurrent ``migrate`` runs (a Job and pods,
or several pods) queue on it, and each one after the first reads the version only once it holds
the lock, so it finds the schema current and does nothing.
"""

from __future__ import annotations

import asyncio
import hashlib

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def advisory_lock_key(version_table: str) -> int:
    """A stable signed 64-bit key per service (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"railguard-migrate:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            key = advisory_lock_key(config.attributes["version_table"])
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.attributes["database_url"])
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_main())
