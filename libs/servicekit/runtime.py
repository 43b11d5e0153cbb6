"""The one entry point of every gRPC service: settings → logging → migrations → wiring → serve()."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.logs import configure_logging
from servicekit.migrations import upgrade
from servicekit.server import Registration, serve
from servicekit.settings import Settings, load_settings

__all__ = ["Wiring", "run_service"]


@dataclass(slots=True)
class Wiring:
    """What a composition root builds: the servicers and the resources to release on shutdown."""

    registrations: list[Registration]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _main(
    name: str, build: Callable[[Settings], Awaitable[Wiring]], migrations: Path, argv: list[str]
) -> None:
    settings = load_settings(name)
    configure_logging(name, settings.log_level)
    command = argv[1] if len(argv) > 1 else "serve"
    if command not in {"serve", "migrate"}:
        raise SystemExit(f"usage: python -m {name}_service [serve|migrate]")
    if command == "migrate":
        await upgrade(settings.database_url, name, migrations)
        return
    if settings.get("MIGRATE_ON_START", "1") == "1":
        await _migrate_in_child(name)
    wiring = await build(settings)
    await serve(settings, wiring.registrations, on_stop=wiring.on_stop)


async def _migrate_in_child(name: str) -> None:
    """Migrate in a short-lived child process, so the server never holds Alembic in memory."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"{name}_service", "migrate"
    )
    if await process.wait() != 0:
        raise SystemExit(f"{name}: migrations failed")


def run_service(
    name: str, build: Callable[[Settings], Awaitable[Wiring]], migrations: Path
) -> None:
    """``python -m <name>_service [serve|migrate]``."""
    asyncio.run(_main(name, build, migrations, sys.argv))
