"""Every service's ``--help`` exits 0 and does nothing else; the operator one-shot commands
(rotate-signing-key, peppers) run as real processes on a real (SQLite) state folder."""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from keys_service.adapters.tables import ApiKeyRow
from servicekit import create_engine, session_factory
from servicekit.db import dispose_engine

SERVICES = ("auth", "workspaces", "keys", "credentials", "edge")


def _run(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        env={
            **os.environ,
            "RAILGUARD_STATE_DIR": str(tmp),
            "RAILGUARD_LOG_LEVEL": "WARNING",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_help_exits_zero_and_touches_nothing(service: str, tmp_path: Path) -> None:
    result = _run(tmp_path, f"{service}_service", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {service}_service [serve")
    assert list(tmp_path.iterdir()) == [], "help must not create databases, keys or certificates"


@pytest.mark.parametrize(
    ("service", "command"),
    [("workspaces", "purge"), ("keys", "purge"), ("credentials", "rewrap"), ("keys", "peppers")],
)
def test_a_commands_help_describes_it_and_runs_nothing(
    service: str, command: str, tmp_path: Path
) -> None:
    result = _run(tmp_path, f"{service}_service", command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {service}_service {command}")
    assert len(result.stdout.splitlines()) > 2
    assert list(tmp_path.iterdir()) == [], "purge --help must not migrate, let alone purge"


def test_rotate_signing_key_now(tmp_path: Path) -> None:
    first = _run(tmp_path, "auth_service", "rotate-signing-key")
    # a fresh database: keys are created, but nothing has been published long enough to promote
    assert first.returncode == 1 and "--immediate" in first.stderr
    second = _run(tmp_path, "auth_service", "rotate-signing-key", "--immediate")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("signing key rotated: ") and "retired" in second.stdout


async def _insert_key(tmp: Path, pepper_version: int) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp / 'keys.db'}")
    now = dt.datetime.now(dt.UTC)
    try:
        async with session_factory(engine)() as session:
            session.add(
                ApiKeyRow(
                    id="k1",
                    workspace_id="w1",
                    name="ci",
                    environment="live",
                    display_prefix="abcd",
                    secret_digest=b"\x01" * 32,
                    secret_pepper_version=pepper_version,
                    scopes=[],
                    allowed_cidrs=[],
                    allowed_origins=[],
                    created_by="u1",
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.commit()
    finally:
        await dispose_engine(engine)


async def test_peppers_add_and_retire_in_the_state_file(tmp_path: Path) -> None:
    assert _run(tmp_path, "keys_service", "migrate").returncode == 0
    listed = _run(tmp_path, "keys_service", "peppers", "list")
    assert listed.stdout.strip() == "v1 (current): 0 key(s)"  # the generated development pepper
    await _insert_key(tmp_path, 1)

    added = _run(tmp_path, "keys_service", "peppers", "add")
    assert added.returncode == 0 and "pepper v2 added" in added.stdout
    pepper = tmp_path / "keys-pepper"
    assert stat.S_IMODE(pepper.stat().st_mode) == 0o600
    assert [e.split(":")[0] for e in pepper.read_text().strip().split(",")] == ["1", "2"]
    new_pepper = pepper.read_text().strip().split(",")[1].split(":")[1]
    assert new_pepper not in added.stdout, "a pepper written to the file is never printed"

    refused = _run(tmp_path, "keys_service", "peppers", "retire", "1")
    assert refused.returncode == 1 and "1 key(s) still hash with v1" in refused.stderr
    current = _run(tmp_path, "keys_service", "peppers", "retire", "2")
    assert current.returncode == 1 and "is current" in current.stderr

    forced = _run(tmp_path, "keys_service", "peppers", "retire", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert pepper.read_text().strip().startswith("2:") and "," not in pepper.read_text()
    assert stat.S_IMODE(pepper.stat().st_mode) == 0o600


def test_peppers_add_from_settings_prints_an_entry_and_changes_nothing(tmp_path: Path) -> None:
    ring = "1:" + base64.b64encode(os.urandom(32)).decode()
    result = _run(tmp_path, "keys_service", "peppers", "add", env={"RAILGUARD_KEYS_PEPPERS": ring})
    assert result.returncode == 0, result.stderr
    entry = result.stdout.strip().splitlines()[-1]
    version, _, encoded = entry.partition(":")
    assert version == "2" and len(base64.b64decode(encoded)) >= 32
    assert ring.split(":")[1] not in result.stdout, "the existing pepper is never printed"
    assert not (tmp_path / "keys-pepper").exists()


def test_railguard_admin_delegates_to_the_service_commands(tmp_path: Path) -> None:
    migrated = _run(tmp_path, "railguard", "admin", "migrate", "keys")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "keys.db").exists()
    listed = _run(tmp_path, "railguard", "admin", "peppers", "list")
    assert listed.returncode == 0 and listed.stdout.strip() == "v1 (current): 0 key(s)"
    refused = _run(tmp_path, "railguard", "admin", "peppers", "retire", "1")
    assert refused.returncode == 1 and "is current" in refused.stderr  # the service's exit code
    wrong = _run(tmp_path, "railguard", "admin", "purge", "auth")
    assert wrong.returncode == 2, "auth has no purge command"
