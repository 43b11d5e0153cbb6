"""Where the API-key pepper comes from.

* ``RAILGUARD_KEYS_PEPPERS="1:<base64>,2:<base64>"``: every version this deployment knows, each at
  least 32 bytes; the highest version is current (new and rotated keys are hashed with it, older
  rows are rehashed on their next use). Inject it from Vault or a Kubernetes secret; never put it
  in the database. Required whenever the database is not the embedded SQLite, because every
  replica must share the same peppers.
* Otherwise (embedded development default) a pepper is generated once into
  ``<state_dir>/keys-pepper`` in the same format, created with mode 0600; a pepper file readable by
  group or others is refused rather than used.

Errors name the problem, never the bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from servicekit.settings import Settings

from keys_service.domain import MIN_PEPPER_BYTES, PepperRing

__all__ = ["PEPPER_FILE", "load_pepper_ring", "parse_peppers"]

PEPPER_FILE: Final = "keys-pepper"


def parse_peppers(text: str) -> PepperRing:
    """Parse ``version:base64`` entries separated by commas; the highest version is current."""
    peppers: dict[int, bytes] = {}
    for i, entry in enumerate(part.strip() for part in text.split(",")):
        if not entry:
            continue
        version_text, sep, encoded = entry.partition(":")
        if not sep or not version_text.isdigit():
            raise ValueError(f"pepper entry {i} must be <version>:<base64>")
        version = int(version_text)
        if version in peppers:
            raise ValueError(f"pepper version {version} appears twice")
        try:
            peppers[version] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"pepper v{version} is not valid base64") from None
    if not peppers:
        raise ValueError("no pepper configured")
    return PepperRing(peppers, current=max(peppers))


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.b64encode(secrets.token_bytes(MIN_PEPPER_BYTES)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process won the race; use its pepper
    with os.fdopen(fd, "w") as handle:
        handle.write(f"1:{encoded}\n")


def _read_private(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} must not be accessible by group or others (chmod 600)")
    return path.read_text()


def load_pepper_ring(settings: Settings) -> PepperRing:
    """The ring from settings, or the generated development pepper file."""
    configured = settings.get("KEYS_PEPPERS")
    if configured:
        return parse_peppers(configured)
    if not settings.database_url.startswith("sqlite"):
        raise ValueError(
            "RAILGUARD_KEYS_PEPPERS is required with a shared database: every replica must "
            "hash keys with the same peppers"
        )
    path = settings.state_dir / PEPPER_FILE
    if not path.exists():
        _generate(path)
    return parse_peppers(_read_private(path))
