"""Real databases for tests: a fresh SQLite file, or a fresh PostgreSQL database dropped afterwards.

PostgreSQL tests run when ``RAILGUARD_TEST_POSTGRES_URL`` names a server (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``); CI sets it and requires them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from devstack.databases import postgres_databases

POSTGRES_ENV = "RAILGUARD_TEST_POSTGRES_URL"
REDIS_ENV = "RAILGUARD_TEST_REDIS_URL"


def postgres_admin_url() -> str:
    return os.environ.get(POSTGRES_ENV, "")


def redis_url() -> str:
    return os.environ.get(REDIS_ENV, "")


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp: Path, label: str = "db") -> AsyncIterator[str]:
    """Yield a SQLAlchemy async URL of an empty database of ``kind`` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / (label + '-' + secrets.token_hex(4) + '.db')}"
        return
    admin = postgres_admin_url()
    if not admin:
        raise RuntimeError(f"{POSTGRES_ENV} is not set")
    async with postgres_databases(admin, "rg_test", [label]) as urls:
        yield urls[label]
