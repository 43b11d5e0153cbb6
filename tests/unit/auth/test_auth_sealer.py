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
