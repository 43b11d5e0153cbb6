"""Encryption at rest of the auth service's secrets (signing keys, grace-window refresh tokens).

Since the move to ``servicekit.kms`` the service seals everything with its ``KeyManager``;
``LocalKekSealer`` remains only to open records sealed before (see ``MigratingSealer``).

``LocalKekSealer`` is AES-256-GCM under a key-encryption key (KEK), with the record's context
bound as associated data so a ciphertext cannot be moved onto another record. Its two methods
have the shape of ``servicekit.kms.KeyManager.encrypt/decrypt``, so switching to the shared
key manager is a one-line change in the composition root.

The KEK comes from ``RAILGUARD_AUTH_SIGNING_KEK`` (base64 of 32 bytes) or, when that is unset,
from ``<state_dir>/auth-signing.kek``, created with mode 0600 on first start.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "rgkek:v1:"
KEK_FILE = "auth-signing.kek"


class Sealer(Protocol):
    async def encrypt(self, plaintext: bytes, context: str) -> str: ...
    async def decrypt(self, ciphertext: str, context: str) -> bytes: ...


class SealError(Exception):
    """A ciphertext did not open: wrong key, wrong context or tampered (fail closed)."""


class LocalKekSealer:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "LocalKekSealer()"

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        if not ciphertext.startswith(_PREFIX):
            raise SealError("unknown ciphertext format")
        try:
            raw = base64.b64decode(ciphertext[len(_PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("ciphertext failed authentication") from None


def load_kek(configured: str, state_dir: Path) -> bytes:
    """The KEK from the setting when given, else from (or newly into) the state-dir file."""
    if configured:
        try:
            kek = base64.b64decode(configured, validate=True)
        except binascii.Error:
            raise ValueError("RAILGUARD_AUTH_SIGNING_KEK is not valid base64") from None
        if len(kek) != 32:
            raise ValueError("RAILGUARD_AUTH_SIGNING_KEK must decode to 32 bytes")
        return kek
    path = state_dir / KEK_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_kek_file(path)
    with os.fdopen(fd, "w") as out:
        out.write(base64.b64encode(secrets.token_bytes(32)).decode())
    return _read_kek_file(path)


def _read_kek_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} must not be readable by group or others (chmod 600)")
    kek = base64.b64decode(path.read_text().strip(), validate=True)
    if len(kek) != 32:
        raise ValueError(f"{path} must hold base64 of 32 bytes")
    return kek


class MigratingSealer:
    """The key manager for everything new; the legacy KEK only opens old ``rgkek:v1:`` records.

    Signing keys sealed before the move to ``servicekit.kms`` keep working until rotation
    replaces them (30 days); nothing new is ever sealed under the KEK.
    """

    def __init__(self, primary: Sealer, legacy: LocalKekSealer | None) -> None:
        self._primary, self._legacy = primary, legacy

    def __repr__(self) -> str:
        return f"MigratingSealer({self._primary!r}, legacy={self._legacy is not None})"

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        return await self._primary.encrypt(plaintext, context)

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        if ciphertext.startswith(_PREFIX):
            if self._legacy is None:
                raise SealError("a legacy ciphertext and no legacy key-encryption key")
            return await self._legacy.decrypt(ciphertext, context)
        return await self._primary.decrypt(ciphertext, context)


def load_legacy_kek(configured: str, state_dir: Path) -> LocalKekSealer | None:
    """The pre-KMS sealer when its KEK is configured or its file exists; never creates one."""
    if not configured and not (state_dir / KEK_FILE).exists():
        return None
    return LocalKekSealer(load_kek(configured, state_dir))
