r"""Keyed hashing of API keys under a versioned server-side pepper.

A key is 256 random bits, so a slow password hash would add latency and no security (ASVS 5.0
§6.5.2); HMAC-SHA256 is a few microseconds. The pepper (held in Vault/KMS, never in the database)
means a stolen table alone cannot confirm a leaked or guessed key offline.

Lookup: the digest *is* the lookup column (unique index). The verifier computes
:meth:`PepperRing.lookup_hashes` (one digest per live pepper version, current first) and asks for
``digest IN (...)``: one indexed query, flat from 1k to 1M keys, and nothing about the key is stored
in clear. A row found under an old version is rehashed under the current one on use
(:meth:`PepperRing.needs_rehash`); a version can be retired once no row carries it.

The message is domain-separated (``railguard/api-key\\0``) so the same pepper could never produce a
digest that collides with another use of it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from servicekit.errors import Unavailable

from .key_format import PresentedKey

__all__ = ["MIN_PEPPER_BYTES", "KeyHash", "PepperRing"]

MIN_PEPPER_BYTES: Final = 32
_CONTEXT: Final = b"railguard/api-key\x00"


@dataclass(frozen=True, slots=True)
class KeyHash:
    """A stored keyed hash: the pepper version it was made with and the 32-byte digest."""

    pepper_version: int
    digest: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.digest) != hashlib.sha256().digest_size:
            raise ValueError("a key hash digest is 32 bytes")


class PepperRing:
    """All pepper versions this process knows; hashes with the current one, verifies with any.

    The pepper bytes live in a private mapping and never appear in ``repr``/``str``.
    """

    __slots__ = ("_current", "_peppers")

    def __init__(self, peppers: Mapping[int, bytes], *, current: int) -> None:
        if current not in peppers:
            raise ValueError(f"current pepper version {current} is not in the ring")
        for version, secret in peppers.items():
            if version < 1:
                raise ValueError(f"pepper version {version} must be a positive integer")
            if len(secret) < MIN_PEPPER_BYTES:
                raise ValueError(f"pepper v{version} must be at least {MIN_PEPPER_BYTES} bytes")
        self._peppers: dict[int, bytes] = dict(peppers)
        self._current = current

    @property
    def current_version(self) -> int:
        return self._current

    @property
    def versions(self) -> tuple[int, ...]:
        """Known versions, current first, then newest to oldest."""
        others = sorted((v for v in self._peppers if v != self._current), reverse=True)
        return (self._current, *others)

    def _digest(self, key: PresentedKey, version: int) -> bytes:
        try:
            pepper = self._peppers[version]
        except KeyError:
            # A row carries a version this process cannot verify: configuration drift. Fail
            # closed and loudly (503) rather than reporting the caller's key as unknown.
            raise Unavailable(
                "API key pepper version is not configured",
                reason="PEPPER_VERSION_UNKNOWN",
                metadata={"pepper_version": str(version)},
            ) from None
        return hmac.digest(pepper, _CONTEXT + key.reveal().encode("ascii"), hashlib.sha256)

    def hash(self, key: PresentedKey) -> KeyHash:
        """The hash to store for a new or rotated key (current version)."""
        return KeyHash(self._current, self._digest(key, self._current))

    def lookup_hashes(self, key: PresentedKey) -> tuple[KeyHash, ...]:
        """One candidate per known version, current first: the values to look the row up by."""
        return tuple(KeyHash(v, self._digest(key, v)) for v in self.versions)

    def matches(self, key: PresentedKey, stored: KeyHash) -> bool:
        """Constant-time check of ``key`` against a stored hash of any known version."""
        return hmac.compare_digest(self._digest(key, stored.pepper_version), stored.digest)

    def needs_rehash(self, stored: KeyHash) -> bool:
        """True when ``stored`` was made with an older pepper and should be rewritten."""
        return stored.pepper_version != self._current

    def __repr__(self) -> str:
        return f"PepperRing(current={self._current}, versions={sorted(self._peppers)})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("PepperRing holds secrets and cannot be pickled")
