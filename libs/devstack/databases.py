"""Throwaway PostgreSQL databases on a server you administer: created fresh, dropped afterwards.

The one place the tests (``testkit.fresh_database``), the benchmarks and local stacks make their
scratch databases. ``admin_url`` is a libpq URL with the right to create databases, such as
``postgresql://postgres@127.0.0.1:5432/postgres``; the names are generated here (a prefix, a label
and random hex), so nothing a caller passes is spliced into SQL unquoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence

__all__ = [
    "create_databases",
    "database_url",
    "drop_databases",
    "postgres_databases",
    "scratch_name",
    "sync_postgres_databases",
]

_LABEL = re.compile(r"[a-z0-9_]{1,30}")


def scratch_name(prefix: str, label: str) -> str:
    """``<prefix>_<label>_<12 hex>``; prefix and label are lower-case letters, digits and ``_``."""
    for part in (prefix, label):
        if not _LABEL.fullmatch(part):
            raise ValueError(f"not a database name part: {part!r}")
    return f"{prefix}_{label}_{secrets.token_hex(6)}"


def database_url(admin_url: str, name: str, driver: str = "postgresql+asyncpg") -> str:
    """The URL of database ``name`` on the admin URL's server; ``driver=""`` keeps ``postgresql``."""
    base = admin_url.rsplit("/", 1)[0]
    if driver:
        base = base.replace("postgresql://", f"{driver}://", 1)
    return f"{base}/{name}"


async def _execute(admin_url: str, statements: list[str]) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_databases(admin_url: str, names: Sequence[str]) -> None:
    await _execute(admin_url, [f'CREATE DATABASE "{n}"' for n in names])


async def drop_databases(admin_url: str, names: Sequence[str]) -> None:
    """Drop them even while a pool still holds connections (``WITH (FORCE)``)."""
    await _execute(admin_url, [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names])


@contextlib.asynccontextmanager
async def postgres_databases(
    admin_url: str, prefix: str, labels: Sequence[str], driver: str = "postgresql+asyncpg"
) -> AsyncIterator[dict[str, str]]:
    """One fresh database per label, as ``{label: url}``; all dropped on the way out."""
    names = {label: scratch_name(prefix, label) for label in labels}
    await create_databases(admin_url, list(names.values()))
    try:
        yield {label: database_url(admin_url, n, driver) for label, n in names.items()}
    finally:
        await drop_databases(admin_url, list(names.values()))


@contextlib.contextmanager
def sync_postgres_databases(
    admin_url: str, prefix: str, labels: Sequence[str], driver: str = "postgresql+asyncpg"
) -> Iterator[dict[str, str]]:
    """``postgres_databases`` for code without an event loop (benchmarks, launchers)."""
    names = {label: scratch_name(prefix, label) for label in labels}
    asyncio.run(create_databases(admin_url, list(names.values())))
    try:
        yield {label: database_url(admin_url, n, driver) for label, n in names.items()}
    finally:
        asyncio.run(drop_databases(admin_url, list(names.values())))
