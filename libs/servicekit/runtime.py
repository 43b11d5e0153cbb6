"""The one entry point of every gRPC service: settings → logging → migrations → wiring → serve()."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.logs import configure_logging
from servicekit.migrations import upgrade
from servicekit.server import Registration, serve
from servicekit.settings import Settings, load_settings
from servicekit.tracing import configure_tracing

__all__ = ["Command", "Wiring", "help_requested", "run_service", "service_usage"]

# A one-shot job beside serve/migrate (purge, rewrap): settings and its own argv in, exit code out.
Command = Callable[[Settings, list[str]], Awaitable[int]]


@dataclass(slots=True)
class Wiring:
    """What a composition root builds: the servicers and the resources to release on shutdown."""

    registrations: list[Registration]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


_BUILT_IN = {
    "serve": "run the gRPC server (the default; migrates first unless RAILGUARD_MIGRATE_ON_START=0)",
    "migrate": "apply the database migrations and exit",
}


def help_requested(argv: list[str]) -> bool:
    """``-h``/``--help``/``help`` as the verb or after any verb. Help never loads settings, never
    migrates and never runs a job (``purge --help`` must not purge)."""
    if len(argv) < 2:
        return False
    return argv[1] in {"-h", "--help", "help"} or any(a in {"-h", "--help"} for a in argv[2:])


def service_usage(name: str, verbs: Mapping[str, str]) -> str:
    """``usage: python -m <name>_service [verb] [args]`` and one line per verb."""
    width = max(len(v) for v in verbs)
    lines = [f"usage: python -m {name}_service [{'|'.join(verbs)}] [args]", ""]
    lines += [f"  {verb.ljust(width)}  {text}" for verb, text in verbs.items()]
    return "\n".join(lines)


def _verbs(commands: Mapping[str, Command]) -> dict[str, str]:
    verbs = dict(_BUILT_IN)
    for verb in sorted(commands):
        doc = (commands[verb].__doc__ or "").strip()
        verbs[verb] = doc.splitlines()[0] if doc else ""
    return verbs


async def _main(
    name: str,
    build: Callable[[Settings], Awaitable[Wiring]],
    migrations: Path,
    argv: list[str],
    commands: Mapping[str, Command],
) -> int:
    if help_requested(argv):  # before settings: help needs no configuration and starts nothing
        verb = argv[1]
        doc = inspect.cleandoc(commands[verb].__doc__ or "") if verb in commands else ""
        if doc:  # the command's own full docstring
            print(f"usage: python -m {name}_service {verb} [args]\n\n{doc}")  # noqa: T201
        else:
            print(service_usage(name, _verbs(commands)))  # noqa: T201 - the command's output
        return 0
    settings = load_settings(name)
    configure_logging(name, settings.log_level)
    command = argv[1] if len(argv) > 1 else "serve"
    if command not in {"serve", "migrate", *commands}:
        verbs = "|".join(["serve", "migrate", *sorted(commands)])
        raise SystemExit(f"usage: python -m {name}_service [{verbs}]")
    migrate = settings.get("MIGRATE_ON_START", "1") == "1"
    if command == "migrate":
        await upgrade(settings.database_url, name, migrations)
        return 0
    if command != "serve":
        if migrate:  # a short-lived job may hold Alembic; a server does not
            await upgrade(settings.database_url, name, migrations)
        return await commands[command](settings, argv[2:])
    if migrate:
        await _migrate_in_child(name)
    stop_tracing = configure_tracing(settings)  # before build: channels and engines pick it up
    wiring = await build(settings)
    on_stop = [*wiring.on_stop, *([stop_tracing] if stop_tracing else [])]
    await serve(settings, wiring.registrations, on_stop=on_stop)
    return 0


async def _migrate_in_child(name: str) -> None:
    """Migrate in a short-lived child process, so the server never holds Alembic in memory."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"{name}_service", "migrate"
    )
    if await process.wait() != 0:
        raise SystemExit(f"{name}: migrations failed")


def run_service(
    name: str,
    build: Callable[[Settings], Awaitable[Wiring]],
    migrations: Path,
    commands: Mapping[str, Command] | None = None,
) -> None:
    """``python -m <name>_service [serve|migrate|<command>] [args]``; exits with the command's code."""
    raise SystemExit(asyncio.run(_main(name, build, migrations, sys.argv, commands or {})))
