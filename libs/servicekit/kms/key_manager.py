"""The ``KeyManager`` interface services code against, and the input rules both backends share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from servicekit.errors import InvalidArgument, RailguardError
from servicekit.kms import errors
from servicekit.kms.ciphertext import Ciphertext, parse_ciphertext

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_CONTEXT_BYTES",
    "MAX_PLAINTEXT_BYTES",
    "SUPPORTED_KEY_TYPE",
    "KeyInfo",
    "KeyManager",
]

SUPPORTED_KEY_TYPE = "aes256-gcm96"
MAX_PLAINTEXT_BYTES = 2**20
MAX_CONTEXT_BYTES = 1024
MAX_BATCH_ITEMS = 1000

_I = TypeVar("_I")
_R = TypeVar("_R")


class _KeyKind(Protocol):
    """What decides whether a key may be used: ``KeyInfo`` and the keyring's state have it."""

    @property
    def derived(self) -> bool: ...

    @property
    def type(self) -> str: ...


_K = TypeVar("_K", bound=_KeyKind)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """Public facts about the named key; never its material."""

    name: str
    type: str
    derived: bool
    latest_version: int
    min_decryption_version: int


@runtime_checkable
class KeyManager(Protocol):
    """Envelope-free encryption service bound to one named, derived, versioned key.

    ``context`` (e.g. ``workspace/<ws>/credential/<id>``) selects a per-record subkey, so a
    ciphertext only decrypts under the context it was sealed with. Batch methods are
    all-or-nothing: the first failing item raises, with its position in ``error.metadata["index"]``.
    """

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        """Seal ``plaintext`` with the latest key version; return ``vault:v<N>:<base64>``."""
        ...

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        """Open ``ciphertext``; refuse versions below ``min_decryption_version``."""
        ...

    async def encrypt_batch(self, items: Sequence[tuple[bytes, str]]) -> list[str]:
        """Encrypt ``(plaintext, context)`` pairs, results in input order."""
        ...

    async def decrypt_batch(self, items: Sequence[tuple[str, str]]) -> list[bytes]:
        """Decrypt ``(ciphertext, context)`` pairs, results in input order."""
        ...

    async def rewrap(self, ciphertext: str, context: str) -> str:
        """Re-seal under the latest version without returning the plaintext to the caller."""
        ...

    async def rewrap_batch(self, items: Sequence[tuple[str, str]]) -> list[str]:
        """Rewrap ``(ciphertext, context)`` pairs, results in input order."""
        ...

    async def rotate(self) -> int:
        """Add a key version; return the new latest version."""
        ...

    async def key_info(self) -> KeyInfo: ...

    async def set_min_decryption_version(self, version: int) -> KeyInfo:
        """Refuse ciphertext older than ``version`` (reversible: lowering it restores access)."""
        ...

    async def self_check(self) -> KeyInfo:
        """Verify the key exists, is derived and is aes256-gcm96; raise otherwise."""
        ...

    async def close(self) -> None: ...


def check_usable(key: _K) -> _K:
    """Fail closed on a key that would not bind contexts (not derived) or is not aes256-gcm96."""
    if not key.derived:
        raise errors.key_not_derived()
    if key.type != SUPPORTED_KEY_TYPE:
        raise errors.key_type_unsupported()
    return key


def check_context(context: str) -> bytes:
    """Validate a context string and return the bytes that key derivation binds to."""
    if not isinstance(context, str) or not context:
        raise errors.context_invalid("must be a non-empty string")
    if not context.isprintable():
        raise errors.context_invalid("must not contain control characters")
    encoded = context.encode("utf-8")
    if len(encoded) > MAX_CONTEXT_BYTES:
        raise errors.context_invalid(f"must be at most {MAX_CONTEXT_BYTES} bytes")
    return encoded


def check_plaintext(plaintext: bytes) -> bytes:
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise InvalidArgument.field("plaintext", "must be bytes")
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise InvalidArgument.field(
            "plaintext",
            f"must be at most {MAX_PLAINTEXT_BYTES} bytes",
            reason=errors.KMS_PLAINTEXT_TOO_LARGE,
        )
    return bytes(plaintext)


def check_batch_size(items: Sequence[object]) -> None:
    if len(items) > MAX_BATCH_ITEMS:
        raise InvalidArgument.field(
            "items", f"at most {MAX_BATCH_ITEMS} per batch", reason=errors.KMS_BATCH_TOO_LARGE
        )


def check_plaintext_item(item: tuple[bytes, str]) -> tuple[bytes, bytes]:
    """A ``(plaintext, context)`` pair checked: the plaintext and the context's bytes."""
    return check_plaintext(item[0]), check_context(item[1])


def check_ciphertext_item(item: tuple[str, str]) -> tuple[Ciphertext, bytes]:
    """A ``(ciphertext, context)`` pair checked: the parsed ciphertext and the context's bytes."""
    return parse_ciphertext(item[0]), check_context(item[1])


def each_item(items: Sequence[_I], fn: Callable[[_I], _R], *, indexed: bool = True) -> list[_R]:
    """Apply ``fn`` to every item, all or nothing: the first failure raises, naming the item's
    position (``error.metadata["index"]``) when ``indexed`` (a batch, not a single call)."""
    results: list[_R] = []
    for index, item in enumerate(items):
        try:
            results.append(fn(item))
        except RailguardError as error:
            raise (errors.in_batch(error, index) if indexed else error) from None
    return results


def check_batch(items: Sequence[_I], check: Callable[[_I], _R]) -> list[_R]:
    """A batch's input checked: at most :data:`MAX_BATCH_ITEMS`, then each item by ``check``
    (:func:`check_plaintext_item` or :func:`check_ciphertext_item`), a refusal naming its index."""
    check_batch_size(items)
    return each_item(items, check)


def check_min_version(version: int, latest: int | None = None) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise errors.version_invalid("min_decryption_version must be a positive integer")
    if latest is not None and version > latest:
        raise errors.version_invalid("min_decryption_version cannot exceed the latest key version")
    return version
