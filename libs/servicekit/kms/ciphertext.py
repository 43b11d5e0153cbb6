"""The ``vault:v<N>:<base64(nonce ‖ ciphertext ‖ tag)>`` format shared with Vault transit.

Parsing is strict: a positive decimal version without sign or leading zeros, canonical standard
base64, and at least a nonce and a tag of payload. Anything else is refused before any key is used.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from servicekit.kms import errors

__all__ = [
    "MAX_CIPHERTEXT_CHARS",
    "NONCE_BYTES",
    "TAG_BYTES",
    "Ciphertext",
    "parse_ciphertext",
]

NONCE_BYTES = 12
TAG_BYTES = 16
MAX_VERSION = 2**31 - 1
# 1 MiB of plaintext (the library's limit) plus overhead, base64-encoded, plus the prefix.
MAX_CIPHERTEXT_CHARS = 4 * ((2**20 + NONCE_BYTES + TAG_BYTES + 2) // 3) + 32

_PREFIX = "vault:v"
_VERSION = re.compile(r"[1-9][0-9]{0,9}")


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """A parsed ciphertext: the key version that sealed it and the nonce-prefixed AEAD output."""

    version: int
    payload: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.version <= MAX_VERSION:
            raise errors.ciphertext_invalid("key version out of range")
        if len(self.payload) < NONCE_BYTES + TAG_BYTES:
            raise errors.ciphertext_invalid("payload shorter than nonce and tag")

    @property
    def nonce(self) -> bytes:
        return self.payload[:NONCE_BYTES]

    @property
    def sealed(self) -> bytes:
        """The AES-GCM output after the nonce: ciphertext followed by the 16-byte tag."""
        return self.payload[NONCE_BYTES:]

    def __str__(self) -> str:
        return f"{_PREFIX}{self.version}:{base64.b64encode(self.payload).decode('ascii')}"


def parse_ciphertext(text: str) -> Ciphertext:
    """Parse ``vault:v<N>:<base64>``; raise InvalidArgument (KMS_CIPHERTEXT_INVALID) if not."""
    if not isinstance(text, str) or len(text) > MAX_CIPHERTEXT_CHARS:
        raise errors.ciphertext_invalid("not a ciphertext string of acceptable length")
    if not text.startswith(_PREFIX):
        raise errors.ciphertext_invalid("missing 'vault:v' prefix")
    version_text, sep, encoded = text[len(_PREFIX) :].partition(":")
    if not sep:
        raise errors.ciphertext_invalid("wrong number of fields")
    if not _VERSION.fullmatch(version_text):
        raise errors.ciphertext_invalid("key version is not a positive decimal number")
    try:
        payload = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        payload = None
    # Re-encoding catches non-canonical padding bits, so each payload has exactly one spelling.
    if payload is None or base64.b64encode(payload).decode("ascii") != encoded:
        raise errors.ciphertext_invalid("payload is not canonical standard base64")
    return Ciphertext(int(version_text), payload)
