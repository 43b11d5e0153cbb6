"""The revisions that can be undone are undone exactly: downgrading from head to a revision leaves
the schema a fresh upgrade to that revision makes, and upgrading again gets head back.

Covers the revisions built from ``servicekit.migrations`` operations (lifecycle table, change
log, an added column), whose ``downgrade`` nothing else runs. SQLite, where the batch copies are.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from servicekit.migrations import upgrade

ROOT = Path(__file__).resolve().parents[2]

# service -> the oldest revision every later one can be undone down to
REVERSIBLE_DOWN_TO = {
    "auth": "auth_0003",
    "credentials": "credentials_0002",
    "keys": "keys_0002",
    "workspaces": "ws_0003",
}


def _versions(service: str) -> Path:
    return ROOT / "services" / service / "migrations" / "versions"


def _schema(db: Path) -> set[tuple[object, ...]]:
    """Tables, indexes and triggers with their columns; order-free, as batch copies reorder."""
    with sqlite3.connect(db) as con:
        objects = con.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
        tables = [name for kind, name, _ in objects if kind == "table"]
        columns = [
            ("column", table, *row[1:])
            for table in tables
            for row in con.execute(f'PRAGMA table_info("{table}")')
        ]
        indexed = [
            ("indexed", name, *row)
            for kind, name, _ in objects
            if kind == "index"
            for row in con.execute(f'PRAGMA index_info("{name}")')
        ]
    return {*objects, *columns, *indexed}


async def _downgrade(db: Path, service: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "libs" / "servicekit" / "alembic"))
    cfg.set_main_option("version_locations", str(_versions(service)))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = f"sqlite+aiosqlite:///{db}"
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    await asyncio.to_thread(command.downgrade, cfg, revision)


@pytest.mark.parametrize("service", sorted(REVERSIBLE_DOWN_TO))
async def test_downgrade_to_a_revision_leaves_what_upgrading_to_it_makes(
    service: str, tmp_path: Path
) -> None:
    target = REVERSIBLE_DOWN_TO[service]
    fresh, roundtrip = tmp_path / "fresh.db", tmp_path / "roundtrip.db"
    await upgrade(f"sqlite+aiosqlite:///{fresh}", service, _versions(service), target)
    url = f"sqlite+aiosqlite:///{roundtrip}"
    await upgrade(url, service, _versions(service))
    head = _schema(roundtrip)

    await _downgrade(roundtrip, service, target)
    assert _schema(roundtrip) == _schema(fresh)
    assert head != _schema(fresh)

    await upgrade(url, service, _versions(service))
    assert _schema(roundtrip) == head
