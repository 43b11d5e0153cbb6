"""The API key wire format: generation from the CSPRNG and offline parsing.

    rg_<env>_<body:43><checksum:6>        env ∈ {live, test}

* ``body`` is the 32 random bytes (256 bits) as fixed-width base62, so every key has one spelling.
* ``checksum`` is CRC32 of everything before it (brand, environment and body), fixed-width base62.
  It is not a MAC (anyone can compute it); it lets the edge, the verifier and secret scanners drop
  typos and junk without touching a cache or database. Covering the environment too means flipping
  ``live``↔``test`` is caught like any other typo.
* Every defect has its own stable reason so a client can tell a truncated paste
  (``KEY_LENGTH_INVALID``) from a mistyped character (``KEY_CHECKSUM_MISMATCH``); all of them are
  :class:`Unauthenticated` and none of them ever echoes the presented text.

The display prefix (``rg_live_AbCd``) is the brand, environment and first four body characters:
enough to recognise a key in a list, about 24 bits of the 256, so it never helps to guess one.
"""

from __future__ import annotations

import secrets
import zlib
from enum import StrEnum
from typing import Final

from servicekit.errors import Unauthenticated

__all__ = [
    "KEY_FORMAT_REASONS",
    "KEY_LENGTH",
    "KeyEnvironment",
    "PresentedKey",
    "generate_key",
    "parse_key",
]

BRAND: Final = "rg"
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHARSET: Final = frozenset(_ALPHABET)
_SECRET_BYTES: Final = 32
_BODY_LEN: Final = 43  # smallest width with 62**w >= 2**256
_CHECKSUM_LEN: Final = 6  # smallest width with 62**w >= 2**32
_DISPLAY_CHARS: Final = 4
KEY_LENGTH: Final = len("rg_live_") + _BODY_LEN + _CHECKSUM_LEN
"""Every key is exactly this long (57); ``live`` and ``test`` have the same width by design."""


class KeyEnvironment(StrEnum):
    """Which mode a key works in; test keys never touch live data."""

    LIVE = "live"
    TEST = "test"


KEY_FORMAT_REASONS: Final = frozenset(
    {
        "KEY_PREFIX_INVALID",
        "KEY_ENVIRONMENT_INVALID",
        "KEY_LENGTH_INVALID",
        "KEY_CHARSET_INVALID",
        "KEY_ENCODING_INVALID",
        "KEY_CHECKSUM_MISMATCH",
    }
)
"""Reasons :func:`parse_key` can raise; all mean "rejected offline, no lookup was made"."""


class PresentedKey:
    """A syntactically valid key; the full value is only reachable through :meth:`reveal`.

    ``repr``/``str`` show the display prefix only, so the secret cannot leak through a log line,
    an f-string or a traceback. Equality is identity: compare keys through their keyed hashes.
    """

    __slots__ = ("_environment", "_value")

    def __init__(self, value: str, environment: KeyEnvironment) -> None:
        self._value = value
        self._environment = environment

    @property
    def environment(self) -> KeyEnvironment:
        return self._environment

    @property
    def display_prefix(self) -> str:
        """``rg_live_AbCd``: safe to store, list and log."""
        return self._value[: len(BRAND) + len(self.environment) + 2 + _DISPLAY_CHARS]

    def reveal(self) -> str:
        """The full key, for hashing and for showing once at creation; never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"PresentedKey({self.display_prefix}…)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("PresentedKey holds a secret and cannot be pickled")


def _encode(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        digits.append(_ALPHABET[rem])
    if value:
        raise ValueError("value does not fit the width")  # unreachable for our constants
    return "".join(reversed(digits))


_MAX_BODY: Final = _encode(2 ** (8 * _SECRET_BYTES) - 1, _BODY_LEN)
_MAX_ENV_CHARS: Final = max(len(e.value) for e in KeyEnvironment)


def _checksum(head: str) -> str:
    return _encode(zlib.crc32(head.encode("ascii")), _CHECKSUM_LEN)


def generate_key(environment: KeyEnvironment) -> PresentedKey:
    """Mint a new key from :mod:`secrets` (the OS CSPRNG)."""
    return _compose(environment, secrets.token_bytes(_SECRET_BYTES))


def _compose(environment: KeyEnvironment, secret: bytes) -> PresentedKey:
    """The key for given secret bytes; separate from the CSPRNG so tests can drive it."""
    if len(secret) != _SECRET_BYTES:
        raise ValueError(f"secret must be {_SECRET_BYTES} bytes")
    head = f"{BRAND}_{environment.value}_{_encode(int.from_bytes(secret, 'big'), _BODY_LEN)}"
    return PresentedKey(head + _checksum(head), environment)


def _reject(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason, metadata={"check": "format"})


def parse_key(text: str) -> PresentedKey:
    """Validate ``text`` offline; raise :class:`Unauthenticated` with a format reason otherwise.

    Checks run cheapest first (prefix, environment, length, charset, encoding, checksum) so junk
    costs a few string operations and never reaches a cache or database.
    """
    if not text.startswith(f"{BRAND}_"):
        raise _reject("KEY_PREFIX_INVALID", "API key does not start with 'rg_'")
    env_end = text.find("_", len(BRAND) + 1, len(BRAND) + 2 + _MAX_ENV_CHARS)
    try:
        environment = KeyEnvironment(text[len(BRAND) + 1 : env_end] if env_end > 0 else "")
    except ValueError:
        raise _reject(
            "KEY_ENVIRONMENT_INVALID", "API key environment must be live or test"
        ) from None
    if len(text) != KEY_LENGTH:
        raise _reject("KEY_LENGTH_INVALID", f"API key must be {KEY_LENGTH} characters long")
    tail = text[env_end + 1 :]
    if not _CHARSET.issuperset(tail):
        raise _reject("KEY_CHARSET_INVALID", "API key contains characters outside base62")
    body, checksum = tail[:_BODY_LEN], tail[_BODY_LEN:]
    if body > _MAX_BODY:  # the alphabet is in ASCII order, so this compares numerically
        raise _reject("KEY_ENCODING_INVALID", "API key body does not encode 256 bits")
    # The checksum is public information; a plain comparison leaks nothing worth protecting.
    if _checksum(text[:-_CHECKSUM_LEN]) != checksum:
        raise _reject("KEY_CHECKSUM_MISMATCH", "API key checksum does not match (a typo?)")
    return PresentedKey(text, environment)
