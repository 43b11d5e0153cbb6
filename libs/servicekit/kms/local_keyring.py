"""Embedded backend: Vault transit semantics on a local keyring file sealed by a master key.

Each key version is 32 random bytes; a context's subkey is HKDF-SHA256(version key, info=context),
exactly as Vault derives keys, and ciphertexts use the same ``vault:v<N>:`` format. The keyring
(versions, min_decryption_version) is stored as JSON sealed with AES-256-GCM under a key derived
from the master key, written atomically (temp file + rename) with mode 0600. Mutations take an
exclusive ``flock`` on ``<file>.lock``, and every operation notices a file replaced by another
process, so several processes can share one keyring.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from servicekit.errors import FailedPrecondition, RailguardError
from servicekit.kms import errors
from servicekit.kms.ciphertext import NONCE_BYTES, Ciphertext
from servicekit.kms.key_manager import (
    SUPPORTED_KEY_TYPE,
    KeyInfo,
    check_batch,
    check_ciphertext_item,
    check_min_version,
    check_plaintext_item,
    check_usable,
    each_item,
)

__all__ = ["LocalKeyring", "MasterKey"]

_T = TypeVar("_T")
_I = TypeVar("_I")
_KEY_BYTES = 32
_FILE_FORMAT = "railguard.keyring"
_FILE_FORMAT_VERSION = 1
_FILE_AAD = b"railguard.keyring/v1"
_FILE_KEY_INFO = b"railguard/kms/keyring-file/v1"
_KEY_ID_INFO = b"railguard/kms/master-key-id/v1"
_MAX_FILE_BYTES = 16 * 2**20


class MasterKey:
    """The 256-bit key that seals a keyring file. Its repr never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
            raise FailedPrecondition(
                "the master key must be exactly 32 bytes", reason=errors.KMS_MASTER_KEY_INVALID
            )
        self._key = key

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(_KEY_BYTES))

    @classmethod
    def from_base64(cls, value: str) -> MasterKey:
        """Decode a standard-base64 value, e.g. one the composition root read from settings."""
        try:
            key = base64.b64decode(value.strip().encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, AttributeError):
            key = b""
        return cls(key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MasterKey:
        """Read a file holding the key as standard base64 (surrounding whitespace ignored)."""
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            raise FailedPrecondition(
                "the master key file cannot be read", reason=errors.KMS_MASTER_KEY_INVALID
            ) from None
        return cls.from_base64(text)

    def to_base64(self) -> str:
        return base64.b64encode(self._key).decode("ascii")

    def write_file(self, path: str | os.PathLike[str]) -> None:
        """Write the key (base64) to a new file with mode 0600; never overwrites."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(self.to_base64() + "\n")

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    def _derive(self, info: bytes) -> bytes:
        return HKDF(algorithm=SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(self._key)


@dataclass(frozen=True, slots=True)
class _Version:
    key: bytes = field(repr=False)
    created: int


@dataclass(frozen=True, slots=True)
class _State:
    name: str
    type: str
    derived: bool
    min_decryption_version: int
    versions: Mapping[int, _Version] = field(repr=False)

    @classmethod
    def new(cls, name: str) -> _State:
        return cls(name, SUPPORTED_KEY_TYPE, True, 1, {1: _Version(os.urandom(_KEY_BYTES), _now())})

    @property
    def latest_version(self) -> int:
        return max(self.versions)

    def info(self) -> KeyInfo:
        return KeyInfo(
            self.name, self.type, self.derived, self.latest_version, self.min_decryption_version
        )

    def rotated(self) -> _State:
        versions = dict(self.versions)
        versions[self.latest_version + 1] = _Version(os.urandom(_KEY_BYTES), _now())
        return replace(self, versions=versions)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "name": self.name,
                "type": self.type,
                "derived": self.derived,
                "min_decryption_version": self.min_decryption_version,
                "versions": {
                    str(n): {"key": base64.b64encode(v.key).decode("ascii"), "created": v.created}
                    for n, v in self.versions.items()
                },
            }
        ).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> _State:
        try:
            doc = json.loads(raw)
            versions = {
                int(n): _Version(base64.b64decode(v["key"], validate=True), int(v["created"]))
                for n, v in doc["versions"].items()
            }
            state = cls(
                str(doc["name"]),
                str(doc["type"]),
                doc["derived"] is True,
                int(doc["min_decryption_version"]),
                versions,
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise _corrupt() from None
        if (
            sorted(versions) != list(range(1, len(versions) + 1))
            or any(len(v.key) != _KEY_BYTES for v in versions.values())
            or not 1 <= state.min_decryption_version <= state.latest_version
        ):
            raise _corrupt()
        return state


class LocalKeyring:
    """``KeyManager`` backed by a local keyring file; the embedded default for one machine."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        master_key: MasterKey,
        *,
        key_name: str = "railguard",
        create_if_missing: bool = True,
        max_concurrency: int = 8,
    ) -> None:
        self._path = Path(path)
        self._master = master_key
        self._key_name = key_name
        self._create_if_missing = create_if_missing
        self._slots = asyncio.Semaphore(max_concurrency)
        self._cache_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cached: tuple[tuple[int, ...], _State] | None = None

    def __repr__(self) -> str:
        return f"LocalKeyring(path={str(self._path)!r}, key_name={self._key_name!r})"

    # -- KeyManager ---------------------------------------------------------------------------

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        return await self._one(self._encrypt_items, check_plaintext_item((plaintext, context)))

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        return await self._one(self._decrypt_items, check_ciphertext_item((ciphertext, context)))

    async def encrypt_batch(self, items: Sequence[tuple[bytes, str]]) -> list[str]:
        return await self._run(self._encrypt_items, check_batch(items, check_plaintext_item), True)

    async def decrypt_batch(self, items: Sequence[tuple[str, str]]) -> list[bytes]:
        checked = check_batch(items, check_ciphertext_item)
        return await self._run(self._decrypt_items, checked, True)

    async def rewrap(self, ciphertext: str, context: str) -> str:
        return await self._one(self._rewrap_items, check_ciphertext_item((ciphertext, context)))

    async def rewrap_batch(self, items: Sequence[tuple[str, str]]) -> list[str]:
        checked = check_batch(items, check_ciphertext_item)
        return await self._run(self._rewrap_items, checked, True)

    async def rotate(self) -> int:
        state = await self._run(self._mutate, lambda s: check_usable(s).rotated())
        return state.latest_version

    async def key_info(self) -> KeyInfo:
        return (await self._run(self._snapshot)).info()

    async def set_min_decryption_version(self, version: int) -> KeyInfo:
        check_min_version(version)

        def change(state: _State) -> _State:
            check_min_version(version, state.latest_version)
            return replace(check_usable(state), min_decryption_version=version)

        return (await self._run(self._mutate, change)).info()

    async def self_check(self) -> KeyInfo:
        return check_usable(await self._run(self._snapshot)).info()

    async def close(self) -> None:
        with self._cache_lock:
            self._cached = None

    # -- internals (run in worker threads) ----------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        async with self._slots:
            return await asyncio.to_thread(self._guarded, fn, *args)

    async def _one(self, fn: Callable[[list[_I], bool], list[_T]], item: _I) -> _T:
        """A single call: ``fn`` on a batch of one whose failure names no index."""
        return (await self._run(fn, [item], False))[0]

    @staticmethod
    def _guarded(fn: Callable[..., _T], *args: Any) -> _T:
        failure: RailguardError
        try:
            return fn(*args)
        except OSError:
            failure = errors.unavailable("the keyring file cannot be read or written")
        raise failure

    def _encrypt_items(self, items: list[tuple[bytes, bytes]], batch: bool) -> list[str]:
        state = check_usable(self._snapshot())
        version = state.latest_version
        key = state.versions[version].key
        return each_item(items, lambda item: _seal(key, version, *item), indexed=batch)

    def _decrypt_items(self, items: list[tuple[Ciphertext, bytes]], batch: bool) -> list[bytes]:
        state = check_usable(self._snapshot())
        return each_item(items, lambda item: _open(state, *item), indexed=batch)

    def _rewrap_items(self, items: list[tuple[Ciphertext, bytes]], batch: bool) -> list[str]:
        state = check_usable(self._snapshot())
        version = state.latest_version
        key = state.versions[version].key
        return each_item(
            items, lambda i: _seal(key, version, _open(state, i[0], i[1]), i[1]), indexed=batch
        )

    def _snapshot(self) -> _State:
        """The current keyring, created on first use when allowed."""
        state = self._read()
        if state is None:
            if not self._create_if_missing:
                raise errors.key_not_found()
            with self._exclusive():
                if self._read() is None:
                    self._write(_State.new(self._key_name))
            state = self._read()
            if state is None:
                raise errors.unavailable("the keyring file disappeared while being created")
        return state

    def _mutate(self, change: Callable[[_State], _State]) -> _State:
        with self._exclusive():
            current = self._read()
            if current is None:
                if not self._create_if_missing:
                    raise errors.key_not_found()
                current = _State.new(self._key_name)
            self._write(change(current))
        return self._snapshot()

    def _read(self) -> _State | None:
        """Load the file, or reuse the cached state when the file was not replaced since."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            signature = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            with self._cache_lock:
                if self._cached is not None and self._cached[0] == signature:
                    return self._cached[1]
            if stat.S_IMODE(st.st_mode) & 0o077:
                raise FailedPrecondition(
                    "the keyring file must not be accessible by group or others (chmod 600)",
                    reason=errors.KMS_KEYRING_INSECURE,
                )
            raw = handle.read(_MAX_FILE_BYTES + 1)
        state = _unseal_file(raw, self._master)
        if state.name != self._key_name:
            raise errors.key_not_found()
        with self._cache_lock:
            self._cached = (signature, state)
        return state

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise writers across threads (lock) and processes (flock on a side file)."""
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self._path.with_name(self._path.name + ".lock")
        with self._write_lock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _write(self, state: _State) -> None:
        data = _seal_file(state, self._master)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".keyring-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self._path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _now() -> int:
    return int(time.time())


def _corrupt() -> FailedPrecondition:
    return FailedPrecondition("the keyring file is corrupt", reason=errors.KMS_KEYRING_CORRUPT)


def _subkey(version_key: bytes, context: bytes) -> AESGCM:
    # Same derivation as Vault transit for derived keys (kdf "hkdf_sha256", no salt).
    derived = HKDF(algorithm=SHA256(), length=_KEY_BYTES, salt=None, info=context)
    return AESGCM(derived.derive(version_key))


def _seal(version_key: bytes, version: int, plaintext: bytes, context: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = _subkey(version_key, context).encrypt(nonce, plaintext, None)
    return str(Ciphertext(version, nonce + sealed))


def _open(state: _State, ciphertext: Ciphertext, context: bytes) -> bytes:
    if ciphertext.version > state.latest_version:
        raise errors.ciphertext_invalid("key version is newer than the latest version")
    if ciphertext.version < state.min_decryption_version:
        raise errors.version_retired()
    aead = _subkey(state.versions[ciphertext.version].key, context)
    try:
        return aead.decrypt(ciphertext.nonce, ciphertext.sealed, None)
    except InvalidTag:
        pass
    raise errors.context_mismatch()


def _key_id(master: MasterKey) -> str:
    """A short public fingerprint of the master key, so a wrong key gets a clear error."""
    return hashlib.sha256(master._derive(_KEY_ID_INFO)).hexdigest()[:16]


def _seal_file(state: _State, master: MasterKey) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(master._derive(_FILE_KEY_INFO)).encrypt(nonce, state.to_json(), _FILE_AAD)
    envelope = {
        "format": _FILE_FORMAT,
        "format_version": _FILE_FORMAT_VERSION,
        "master_key_id": _key_id(master),
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "sealed": base64.b64encode(sealed).decode("ascii"),
    }
    return json.dumps(envelope, indent=1).encode("utf-8") + b"\n"


def _unseal_file(raw: bytes, master: MasterKey) -> _State:
    if len(raw) > _MAX_FILE_BYTES:
        raise _corrupt()
    try:
        envelope = json.loads(raw)
        if envelope["format"] != _FILE_FORMAT or envelope["format_version"] != 1:
            raise ValueError
        key_id = str(envelope["master_key_id"])
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        sealed = base64.b64decode(envelope["sealed"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _corrupt() from None
    if not hmac.compare_digest(key_id.encode(), _key_id(master).encode()):
        raise FailedPrecondition(
            "the keyring file was sealed with a different master key",
            reason=errors.KMS_MASTER_KEY_MISMATCH,
        )
    try:
        plain = AESGCM(master._derive(_FILE_KEY_INFO)).decrypt(nonce, sealed, _FILE_AAD)
    except (InvalidTag, ValueError):
        plain = None
    if plain is None:
        raise _corrupt()
    return _State.from_json(plain)
