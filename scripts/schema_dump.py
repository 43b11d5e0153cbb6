r"""Each service's schema after ``alembic upgrade head``, on SQLite and PostgreSQL, as text files.

For refactors of the migrations that must not change the schema: run it on the old tree and on
the new one into two folders and ``diff -r`` them. ``python scripts/schema_dump.py OUT_DIR``
(PostgreSQL from ``RAILGUARD_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/
postgres``; a scratch database per service is created and dropped). SQLite gives
``sqlite_master`` in a canonical order: Alembic's batch mode (which copies a table to alter it)
emits a copied table's constraints and indexes in an order that varies from run to run, so
rows are sorted and the CONSTRAINT clauses of a CREATE TABLE too; nothing else is touched.
PostgreSQL gives ``pg_dump --schema-only`` as is, less its per-run ``\\restrict`` token lines.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth", "credentials", "keys", "workspaces")
sys.path.insert(0, str(ROOT / "libs"))

from servicekit.migrations import upgrade  # noqa: E402 - after the path set-up


def _canonical_sql(sql: str | None) -> str:
    if not sql or not sql.startswith("CREATE TABLE"):
        return repr(sql)
    head, _, tail = sql.rpartition("\n)")
    lines = head.split(", \n")
    columns = [line for line in lines if not line.lstrip().startswith("CONSTRAINT")]
    constraints = sorted(line for line in lines if line.lstrip().startswith("CONSTRAINT"))
    return repr(", \n".join(columns + constraints) + "\n)" + tail)


async def _sqlite(service: str, versions: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "schema.db"
        await upgrade(f"sqlite+aiosqlite:///{db}", service, versions)
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return "".join(
        f"{kind} {name} on {table}: {_canonical_sql(sql)}\n"
        for kind, name, table, sql in sorted(rows)
    )


async def _postgres(service: str, versions: Path, admin_url: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    parts = urlsplit(admin_url)
    name = f"schema_dump_{service}_{os.getpid()}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)
            await upgrade(url.rsplit("/", 1)[0] + "/" + name, service, versions)
            argv = ["pg_dump", "--schema-only", "-h", parts.hostname or "127.0.0.1"]
            argv += ["-p", str(parts.port or 5432), "-U", parts.username or "postgres", name]
            done = await asyncio.to_thread(
                subprocess.run,  # noqa: S603 - a fixed program, no shell
                argv,
                capture_output=True,
                text=True,
                check=True,
            )
            dump = done.stdout
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()
    return "".join(f"{line}\n" for line in dump.splitlines() if "restrict " not in line)


async def main(out: Path) -> None:
    admin_url = os.environ.get(
        "RAILGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    for service in SERVICES:
        versions = ROOT / "services" / service / "migrations" / "versions"
        (out / f"{service}.sqlite.txt").write_text(await _sqlite(service, versions))
        (out / f"{service}.postgresql.sql").write_text(
            await _postgres(service, versions, admin_url)
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(Path(sys.argv[1])))
