"""``railguard admin …``: operator jobs, delegated to each service's one-shot commands.

Each subcommand runs ``python -m <service>_service <command>`` with this interpreter and the
current environment (``RAILGUARD_*`` settings, database URLs, KMS), so it must run where the
services are installed (a service image, or the repository's venv) with that service's settings.
The service's exit code is the command's.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import click

__all__ = ["admin"]

SERVICES = ("auth", "workspaces", "keys", "credentials")


def _run(service: str, *args: str) -> None:
    module = f"{service}_service"
    if importlib.util.find_spec(module) is None:
        click.echo(
            f"error: OPERATOR_TOOLS_MISSING: {module} is not importable here; run this where "
            "the Railguard services are installed",
            err=True,
        )
        sys.exit(1)
    code = subprocess.call([sys.executable, "-m", module, *args])  # noqa: S603 - our interpreter
    sys.exit(code)


@click.group()
def admin() -> None:
    """Operator commands (migrate, purge, rewrap, signing keys, peppers)."""


@admin.command()
@click.argument("service", type=click.Choice(SERVICES))
def migrate(service: str) -> None:
    """Apply SERVICE's database migrations and exit."""
    _run(service, "migrate")


@admin.command()
@click.argument("service", type=click.Choice(["workspaces", "keys", "credentials"]))
def purge(service: str) -> None:
    """Run SERVICE's retention job once (destroy what is past its retention window)."""
    _run(service, "purge")


@admin.command()
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run without rotating again.")
def rewrap(batch_size: int, resume: bool) -> None:
    """Rotate the credentials encryption key and re-seal every stored secret under it."""
    _run(
        "credentials", "rewrap", "--batch-size", str(batch_size), *(["--resume"] if resume else [])
    )


@admin.command("rotate-signing-key")
@click.option(
    "--immediate",
    is_flag=True,
    help="Promote the next key even if verifiers may not have fetched it yet (key compromise).",
)
def rotate_signing_key(immediate: bool) -> None:
    """Rotate the JWT signing key now: the published next key signs, the old one only verifies."""
    _run("auth", "rotate-signing-key", *(["--immediate"] if immediate else []))


@admin.group()
def peppers() -> None:
    """API-key pepper versions (keyed-hash secrets of the keys service)."""


@peppers.command("list")
def peppers_list() -> None:
    """The configured pepper versions and how many keys each still hashes."""
    _run("keys", "peppers", "list")


@peppers.command("add")
def peppers_add() -> None:
    """Add a new current pepper version (restart the keys replicas to use it)."""
    _run("keys", "peppers", "add")


@peppers.command("retire")
@click.argument("version", type=int)
@click.option("--force", is_flag=True, help="Retire even if keys still use it (they stop working).")
def peppers_retire(version: int, force: bool) -> None:
    """Remove pepper VERSION once no key's digest uses it any more."""
    _run("keys", "peppers", "retire", str(version), *(["--force"] if force else []))
