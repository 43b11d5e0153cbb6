"""Where the credentials service's key material comes from: the key manager and the webhook pepper.

* Key manager: ``RAILGUARD_KMS_URL`` (see docs/key-management.md), e.g.
  ``vault://vault.internal:8200/transit/credentials?auth=kubernetes&role=credentials-service``.
  Unset, on the embedded SQLite default only: a local keyring at
  ``<state_dir>/credentials.keyring`` sealed by ``<state_dir>/credentials.master-key``, a master
  key generated on first start with mode 0600 (lose it and the credentials are lost with it).
* Webhook pepper: ``RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER`` (standard base64 of at least 32 bytes).
  Unset, on the embedded SQLite default only: ``<state_dir>/credentials-webhook-pepper``,
  generated with mode 0600; a file readable by group or others is refused.

With a shared database both must be configured, because every replica must decrypt and hash
alike. Errors name the problem, never the bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from servicekit.kms import KeyManager, MasterKey, key_manager_from_url
from servicekit.settings import Settings

from credentials_service.domain import MIN_PEPPER_BYTES, TokenHasher

__all__ = ["KEYRING_FILE", "MASTER_KEY_FILE", "PEPPER_FILE", "key_manager", "token_hasher"]

KEYRING_FILE: Final = "credentials.keyring"
MASTER_KEY_FILE: Final = "credentials.master-key"
PEPPER_FILE: Final = "credentials-webhook-pepper"


def _embedded(settings: Settings, what: str) -> None:
    if not settings.database_url.startswith("sqlite"):
        raise ValueError(
            f"{what} is required with a shared database: every replica must use the same key "
            "material"
        )


def key_manager(settings: Settings) -> KeyManager:
    """The configured key manager, or the embedded local keyring (created on first use)."""
    if settings.kms_url:
        return key_manager_from_url(settings.kms_url)
    _embedded(settings, "RAILGUARD_KMS_URL")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    master_path = settings.state_dir / MASTER_KEY_FILE
    try:
        MasterKey.generate().write_file(master_path)
    except FileExistsError:
        pass  # an existing master key is kept, never overwritten
    _private(master_path)
    keyring = settings.state_dir / KEYRING_FILE
    return key_manager_from_url(f"local://{keyring}?master_key_file={master_path}&key=credentials")


def token_hasher(settings: Settings, configured: str) -> TokenHasher:
    """The configured pepper (``CredentialsSettings.webhook_pepper``), or the embedded 0600 file."""
    if configured:
        return TokenHasher(_decode(configured, "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER"))
    _embedded(settings, "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER")
    path = settings.state_dir / PEPPER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by a concurrent process: use it
    else:
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(secrets.token_bytes(MIN_PEPPER_BYTES)).decode() + "\n")
    _private(path)
    return TokenHasher(_decode(path.read_text(), str(path)))


def _private(path: Path) -> None:
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} must not be accessible by group or others (chmod 600)")


def _decode(text: str, source: str) -> bytes:
    try:
        pepper = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{source} is not valid base64") from None
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"{source} must decode to at least {MIN_PEPPER_BYTES} bytes")
    return pepper
