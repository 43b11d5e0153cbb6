"""An RFC 6238 TOTP generator for tests, written independently of any service's code path.

from testkit.totp import totp_code, wait_for_fresh_step
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import struct
import time
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "b32_secret",
    "rfc6238",
    "secret_from_uri",
    "totp_code",
    "wait_for_fresh_step",
]


def rfc6238(
    secret: bytes, unix_time: float, *, digits: int = 6, period: int = 30, digest: str = "sha1"
) -> str:
    """TOTP per RFC 6238 §4 (T0 = 0): HOTP (RFC 4226 §5.3) of floor(t / period)."""
    counter = int(unix_time) // period
    mac = hmac.new(secret, counter.to_bytes(8, "big"), digest).digest()
    offset = mac[len(mac) - 1] & 0xF
    (word,) = struct.unpack_from(">I", mac, offset)
    return f"{(word & 0x7FFFFFFF) % (10**digits):0{digits}d}"


def b32_secret(encoded: str) -> bytes:
    """Decode an authenticator-style base32 secret (padding optional, case-insensitive)."""
    clean = encoded.strip().replace(" ", "").upper()
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


def secret_from_uri(uri: str) -> bytes:
    return b32_secret(parse_qs(urlsplit(uri).query)["secret"][0])


def totp_code(secret: bytes, *, steps: int = 0, at: float | None = None) -> str:
    """The 6-digit code of the step ``steps`` away from now (or from ``at``)."""
    now = time.time() if at is None else at
    return rfc6238(secret, now + steps * 30)


async def wait_for_fresh_step(min_remaining: float = 6.0) -> None:
    """Sleep into the next 30 s step when fewer than ``min_remaining`` seconds are left in this
    one, so a test's "previous step" and "current step" codes stay valid while it runs."""
    remaining = 30 - (time.time() % 30)
    if remaining < min_remaining:
        await asyncio.sleep(remaining + 0.05)
