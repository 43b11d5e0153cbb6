"""Key material from settings: the embedded defaults (files made 0600) and the shared-database rule."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from credentials_service.adapters.key_material import (
    KEYRING_FILE,
    MASTER_KEY_FILE,
    PEPPER_FILE,
    key_manager,
    token_hasher,
)
from credentials_service.config import CredentialsSettings
from credentials_service.domain import SecretValue, TokenHasher
from servicekit import load_settings
from servicekit.kms import LocalKeyring

TOKEN = SecretValue("rgwh_" + "t" * 43)


def settings(tmp_path: Path, **env: str) -> object:
    return load_settings(
        "credentials",
        {"RAILGUARD_STATE_DIR": str(tmp_path), **{f"RAILGUARD_{k}": v for k, v in env.items()}},
    )


def _hasher(s: object) -> TokenHasher:
    return token_hasher(s, CredentialsSettings.load(s).webhook_pepper)  # type: ignore[arg-type]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_embedded_defaults_generate_private_files_once(tmp_path: Path) -> None:
    kms = key_manager(settings(tmp_path))  # type: ignore[arg-type]
    assert isinstance(kms, LocalKeyring)
    info = await kms.self_check()
    assert info.derived and info.latest_version == 1 and info.name == "credentials"
    ciphertext = await kms.encrypt(b"value", "workspace/w/credential/c")
    assert _mode(tmp_path / MASTER_KEY_FILE) == 0o600
    assert _mode(tmp_path / KEYRING_FILE) == 0o600
    # a second start reuses the same master key and keyring
    again = key_manager(settings(tmp_path))  # type: ignore[arg-type]
    assert await again.decrypt(ciphertext, "workspace/w/credential/c") == b"value"

    hasher = _hasher(settings(tmp_path))
    assert _mode(tmp_path / PEPPER_FILE) == 0o600
    assert _hasher(settings(tmp_path)).digest(TOKEN) == hasher.digest(TOKEN)


def test_configured_pepper_wins_and_is_checked(tmp_path: Path) -> None:
    pepper = base64.b64encode(b"x" * 32).decode()
    hasher = _hasher(settings(tmp_path, CREDENTIALS_WEBHOOK_PEPPER=pepper))
    assert len(hasher.digest(TOKEN)) == 32
    assert not (tmp_path / PEPPER_FILE).exists()
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match="RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER") as err:
            _hasher(settings(tmp_path, CREDENTIALS_WEBHOOK_PEPPER=bad))
        assert bad not in str(err.value)


def test_a_shared_database_needs_configured_key_material(tmp_path: Path) -> None:
    shared = settings(tmp_path, DATABASE_URL="postgresql+asyncpg://db/credentials")
    with pytest.raises(ValueError, match="RAILGUARD_KMS_URL"):
        key_manager(shared)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER"):
        _hasher(shared)


def test_a_pepper_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / PEPPER_FILE).write_text(base64.b64encode(b"y" * 32).decode())
    (tmp_path / PEPPER_FILE).chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        _hasher(settings(tmp_path))
