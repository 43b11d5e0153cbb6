"""TOTP (RFC 6238 over RFC 4226 HOTP): SHA1, 6 digits, 30 s steps, 160-bit secrets.

Pure functions: the secret is raw bytes in, codes are strings out. A code is matched against the
steps of the acceptance window (``{-1, 0}``: the current step and the previous one, for clock
skew and typing time) with constant-time comparisons and no early exit; the caller stores the
matched step and refuses any step at or below the last accepted one, so a code works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from urllib.parse import quote, urlencode

SECRET_BYTES = 20  # 160 bits (RFC 4226 R6)
DIGITS = 6
PERIOD = 30
ALGORITHM = "SHA1"
WINDOW = (-1, 0)
_CODE = re.compile(r"^[0-9]{6}$")


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def base32_secret(secret: bytes) -> str:
    """The secret as authenticator apps expect it: RFC 4648 base32, no padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def time_step(unix_seconds: float, period: int = PERIOD) -> int:
    """T = floor((t - T0) / X) with T0 = 0; a Python int, so it never overflows (2038-safe)."""
    return int(unix_seconds // period)


def hotp(secret: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 §5.3: HMAC over the 8-byte big-endian counter, dynamic truncation, mod 10^d."""
    mac = hmac.new(secret, struct.pack(">Q", counter), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def totp(secret: bytes, unix_seconds: float, digits: int = DIGITS, period: int = PERIOD) -> str:
    return hotp(secret, time_step(unix_seconds, period), digits)


def well_formed_code(code: str) -> bool:
    return bool(_CODE.match(code))


def match_step(
    secret: bytes, code: str, current_step: int, window: tuple[int, ...] = WINDOW
) -> int | None:
    """The newest step of the window whose code equals ``code``, else None (constant time)."""
    if not well_formed_code(code):
        return None
    matched: int | None = None
    for offset in sorted(window):
        step = current_step + offset
        if step < 0:
            continue
        if hmac.compare_digest(hotp(secret, step).encode(), code.encode()):
            matched = step
    return matched


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    """The Key Uri Format authenticator apps scan: ``otpauth://totp/Issuer:account?...``."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": base32_secret(secret),
            "issuer": issuer,
            "algorithm": ALGORITHM,
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
