"""The keyring file: sealed at rest, 0600, refused under a wrong master key, safely shared."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from servicekit.errors import FailedPrecondition, NotFound
from servicekit.kms import (
    KMS_KEY_NOT_FOUND,
    KMS_KEY_VERSION_RETIRED,
    KMS_KEYRING_CORRUPT,
    KMS_KEYRING_INSECURE,
    KMS_MASTER_KEY_INVALID,
    KMS_MASTER_KEY_MISMATCH,
    LocalKeyring,
    MasterKey,
)
from servicekit.kms import local_keyring as internals

CTX = "workspace/ws_1/credential/cred_1"


def version_keys(path: Path, master: MasterKey) -> list[bytes]:
    state = internals._unseal_file(path.read_bytes(), master)
    return [v.key for v in state.versions.values()]


def spellings(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
    ]


async def test_file_holds_no_key_material_in_clear(tmp_path: Path) -> None:
    master = MasterKey.generate()
    path = tmp_path / "keyring.json"
    keyring = LocalKeyring(path, master)
    plaintext = b"sk-live-0123456789abcdef"
    await keyring.encrypt(plaintext, CTX)
    await keyring.rotate()
    raw = path.read_bytes()
    secrets = [*version_keys(path, master), master._key, plaintext]
    assert len(secrets) == 4
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in raw
    envelope = json.loads(raw)
    assert set(envelope) == {"format", "format_version", "master_key_id", "nonce", "sealed"}


async def test_file_and_lock_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keyring.json"
    keyring = LocalKeyring(path, MasterKey.generate())
    await keyring.self_check()
    await keyring.rotate()  # replaced by rename: the new file must be 0600 as well
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name("keyring.json.lock").stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


async def test_group_readable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    master = MasterKey.generate()
    await LocalKeyring(path, master).self_check()
    path.chmod(0o640)
    with pytest.raises(FailedPrecondition) as caught:
        await LocalKeyring(path, master).self_check()
    assert caught.value.reason == KMS_KEYRING_INSECURE


async def test_wrong_master_key_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ciphertext = await LocalKeyring(path, MasterKey.generate()).encrypt(b"x", CTX)
    with pytest.raises(FailedPrecondition) as caught:
        await LocalKeyring(path, MasterKey.generate()).decrypt(ciphertext, CTX)
    assert caught.value.reason == KMS_MASTER_KEY_MISMATCH
    assert "different master key" in caught.value.message


async def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    master = MasterKey.generate()
    await LocalKeyring(path, master).self_check()
    envelope = json.loads(path.read_bytes())
    sealed = bytearray(base64.b64decode(envelope["sealed"]))
    sealed[5] ^= 1
    envelope["sealed"] = base64.b64encode(sealed).decode()
    path.write_text(json.dumps(envelope))
    for content in (json.dumps(envelope).encode(), b"not json", b"{}"):
        path.write_bytes(content)
        with pytest.raises(FailedPrecondition) as caught:
            await LocalKeyring(path, master).self_check()
        assert caught.value.reason == KMS_KEYRING_CORRUPT


async def test_missing_file_without_create_and_foreign_key_name(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    master = MasterKey.generate()
    with pytest.raises(NotFound) as caught:
        await LocalKeyring(path, master, create_if_missing=False).self_check()
    assert caught.value.reason == KMS_KEY_NOT_FOUND and not path.exists()
    await LocalKeyring(path, master, key_name="credentials").self_check()
    with pytest.raises(NotFound):
        await LocalKeyring(path, master, key_name="webhook-tokens").self_check()


async def test_instances_sharing_a_file_see_each_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    master = MasterKey.generate()
    first, second = LocalKeyring(path, master), LocalKeyring(path, master)
    old = await first.encrypt(b"v1", CTX)
    assert await second.decrypt(old, CTX) == b"v1"
    assert await first.rotate() == 2
    new = await second.encrypt(b"v2", CTX)  # second picks up version 2 without restarting
    assert new.startswith("vault:v2:")
    assert await first.decrypt(new, CTX) == b"v2"
    await first.set_min_decryption_version(2)
    with pytest.raises(FailedPrecondition) as caught:
        await second.decrypt(old, CTX)
    assert caught.value.reason == KMS_KEY_VERSION_RETIRED
    assert await second.rotate() == 3  # read-modify-write starts from the file, not a cache
    assert (await first.key_info()).latest_version == 3


def test_master_key_sources(tmp_path: Path) -> None:
    key = MasterKey.generate()
    assert "redacted" in repr(key) and key.to_base64() not in repr(key)
    key_file = tmp_path / "master.key"
    key.write_file(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert MasterKey.from_file(key_file)._key == key._key
    assert MasterKey.from_base64(" " + key.to_base64() + "\n")._key == key._key
    with pytest.raises(FileExistsError):
        key.write_file(key_file)
    for bad in ("", "c2hvcnQ=", "not base64!", base64.b64encode(os.urandom(33)).decode()):
        with pytest.raises(FailedPrecondition) as caught:
            MasterKey.from_base64(bad)
        assert caught.value.reason == KMS_MASTER_KEY_INVALID
    with pytest.raises(FailedPrecondition):
        MasterKey.from_file(tmp_path / "missing")


def test_repr_shows_no_secret(tmp_path: Path) -> None:
    master = MasterKey.generate()
    text = repr(LocalKeyring(tmp_path / "k.json", master))
    assert master.to_base64() not in text and "k.json" in text
