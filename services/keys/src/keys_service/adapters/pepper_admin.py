"""Operator jobs on the API-key pepper ring: list versions in use, add a version, retire one.

Where the ring lives decides what a job can change:

* ``RAILGUARD_KEYS_PEPPERS`` (a secret injected into every replica): this process cannot edit
  it. ``add`` prints a new ``<version>:<base64>`` entry to append to the secret; ``retire``
  checks that no key still needs the version and says which entry to remove. Then roll the
  replicas.
* the generated ``<state_dir>/keys-pepper`` file (embedded SQLite default): edited in place,
  atomically, mode 0600. The running keys process loads the ring at start: restart it.

A version is only retired once no key's digest (current or rotation-previous) uses it: keys
hashed under an older pepper move to the current one on their next use, but a key nobody has
used since would stop working. ``--force`` retires anyway. The current (highest) version cannot
be retired; add a newer one first.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
from pathlib import Path

from servicekit.settings import Settings
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keys_service.adapters.peppers import PEPPER_FILE, load_pepper_ring, parse_peppers
from keys_service.adapters.tables import ApiKeyRow
from keys_service.domain import MIN_PEPPER_BYTES

__all__ = ["add_pepper", "pepper_usage", "retire_pepper"]


def _entries(text: str) -> dict[int, str]:
    """``version → base64`` of a ring text, validated the way the service parses it."""
    parse_peppers(text)
    entries: dict[int, str] = {}
    for part in text.split(","):
        version, _, encoded = part.strip().partition(":")
        if version:
            entries[int(version)] = encoded.strip()
    return entries


def _write(path: Path, entries: dict[int, str]) -> None:
    text = ",".join(f"{v}:{entries[v]}" for v in sorted(entries)) + "\n"
    parse_peppers(text)  # never write a ring the service could not load
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _configured(settings: Settings) -> str:
    return settings.get("KEYS_PEPPERS")


def pepper_file(settings: Settings) -> Path:
    return settings.state_dir / PEPPER_FILE


def add_pepper(settings: Settings) -> tuple[int, str | None]:
    """Add version max+1. Returns (version, the entry to append) when the ring is configured in
    settings (nothing was changed), or (version, None) when the file was updated."""
    ring = load_pepper_ring(settings)  # also creates the development file if needed
    version = max(ring.versions) + 1
    encoded = base64.b64encode(secrets.token_bytes(MIN_PEPPER_BYTES)).decode()
    if _configured(settings):
        return version, f"{version}:{encoded}"
    path = pepper_file(settings)
    entries = _entries(path.read_text())
    entries[version] = encoded
    _write(path, entries)
    return version, None


async def pepper_usage(sessions: async_sessionmaker[AsyncSession]) -> dict[int, int]:
    """How many keys still verify through each pepper version (current or previous digest)."""
    now = dt.datetime.now(dt.UTC)
    usage: dict[int, int] = {}
    async with sessions() as session:
        current = await session.execute(
            select(ApiKeyRow.secret_pepper_version, func.count())
            .where(ApiKeyRow.secret_digest.is_not(None))
            .group_by(ApiKeyRow.secret_pepper_version)
        )
        for version, count in current.all():
            usage[int(version)] = usage.get(int(version), 0) + int(count)
        previous = await session.execute(
            select(ApiKeyRow.previous_pepper_version, func.count())
            .where(
                ApiKeyRow.previous_digest.is_not(None),
                ApiKeyRow.previous_pepper_version.is_not(None),
                or_(ApiKeyRow.previous_expires_at.is_(None), ApiKeyRow.previous_expires_at > now),
            )
            .group_by(ApiKeyRow.previous_pepper_version)
        )
        for previous_version, count in previous.all():
            if previous_version is not None:
                usage[previous_version] = usage.get(previous_version, 0) + int(count)
    return usage


def retire_pepper(settings: Settings, version: int) -> bool:
    """Drop ``version`` from the file (True), or return False when the ring is configured in
    settings (the operator removes the entry). Refuses the current version."""
    ring = load_pepper_ring(settings)
    if version not in ring.versions:
        raise ValueError(f"pepper version {version} is not configured")
    if version == ring.current_version:
        raise ValueError(f"pepper version {version} is current; add a newer one first")
    if _configured(settings):
        return False
    path = pepper_file(settings)
    entries = _entries(path.read_text())
    del entries[version]
    _write(path, entries)
    return True
