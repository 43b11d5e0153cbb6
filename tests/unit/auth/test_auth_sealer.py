from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest
from auth_service.adapters.sealer import KEK_FILE, LocalKekSealer, SealError, load_kek


async def test_round_trip_and_context_binding() -> None:
    sealer = LocalKekSealer(secrets.token_bytes(32))
    sealed = await sealer.encrypt(b"private bytes", "auth/signing-key/a")
    assert b"private bytes" not in sealed.encode()
    assert await sealer.decrypt(sealed, "auth/signing-key/a") == b"private bytes"
    with pytest.raises(SealError):
        await sealer.decrypt(sealed, "auth/signing-key/b")
    with pytest.raises(SealError):
        await LocalKekSealer(secrets.token_bytes(32)).decrypt(sealed, "auth/signing-key/a")


def test_kek_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    kek = load_kek("", tmp_path)
    assert len(kek) == 32
    assert (tmp_path / KEK_FILE).stat().st_mode & 0o777 == 0o600
    assert load_kek("", tmp_path) == kek


def test_a_group_readable_kek_file_is_refused(tmp_path: Path) -> None:
    load_kek("", tmp_path)
    os.chmod(tmp_path / KEK_FILE, 0o644)
    with pytest.raises(PermissionError):
        load_kek("", tmp_path)


def test_kek_from_settings(tmp_path: Path) -> None:
    raw = secrets.token_bytes(32)
    assert load_kek(base64.b64encode(raw).decode(), tmp_path) == raw
    with pytest.raises(ValueError, match="32 bytes"):
        load_kek(base64.b64encode(raw[:16]).decode(), tmp_path)
    assert not (tmp_path / KEK_FILE).exists()


async def test_migrating_sealer_opens_legacy_records_and_seals_with_the_key_manager(
    tmp_path: Path,
) -> None:
    from auth_service.__main__ import KEYRING_FILE, MASTER_KEY_FILE, key_manager
    from auth_service.adapters.sealer import MigratingSealer, load_legacy_kek
    from testkit import test_settings

    settings = test_settings("auth", tmp_path / "certs")
    assert load_legacy_kek("", settings.state_dir) is None  # never created
    kms = key_manager(settings)
    await kms.self_check()
    assert (settings.state_dir / MASTER_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (settings.state_dir / KEYRING_FILE).exists()
    legacy = LocalKekSealer(load_kek("", settings.state_dir))
    old = await legacy.encrypt(b"old key", "auth/signing-key/k0")
    sealer = MigratingSealer(kms, load_legacy_kek("", settings.state_dir))
    assert await sealer.decrypt(old, "auth/signing-key/k0") == b"old key"
    new = await sealer.encrypt(b"new key", "auth/signing-key/k1")
    assert new.startswith("vault:v1:")
    assert await key_manager(settings).decrypt(new, "auth/signing-key/k1") == b"new key"
    with pytest.raises(SealError):
        await MigratingSealer(kms, None).decrypt(old, "auth/signing-key/k0")
    await kms.close()
