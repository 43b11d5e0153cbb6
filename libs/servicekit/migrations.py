"""Per-service schema migrations with Alembic, one shared environment, one version table each."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["upgrade"]

_ENV = Path(__file__).parent / "alembic"


def _config(database_url: str, service: str, versions: Path) -> Config:
    from alembic.config import Config  # imported here: a serving process never loads Alembic

    cfg = Config()
    cfg.set_main_option("script_location", str(_ENV))
    cfg.set_main_option("version_locations", str(versions))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = database_url
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    return cfg


async def upgrade(database_url: str, service: str, versions: Path, revision: str = "head") -> None:
    """Bring the service's database to ``revision``; safe to run on every start, and concurrent
    runs on PostgreSQL queue on an advisory lock (see alembic/env.py)."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[-1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    await asyncio.to_thread(command.upgrade, _config(database_url, service, versions), revision)
