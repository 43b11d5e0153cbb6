"""Recovery codes: 10 single-use codes of 60 random bits each, stored only as keyed hashes.

A code is 12 characters of the RFC 4648 base32 alphabet (lower case), shown as
``xxxx-xxxx-xxxx``. Input is folded (case, spaces and hyphens ignored) before hashing.

Storage is HMAC-SHA256 under a server-side pepper, not argon2id: the codes come from a CSPRNG
with 60 bits of entropy, so there is no dictionary to slow down, a dump without the pepper
(which is sealed by the key manager) cannot be attacked offline at all, and a keyed hash can be
looked up and consumed in one atomic ``UPDATE`` instead of running up to ten argon2 verifies
per attempt (a cheap CPU denial of service).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COUNT = 10
LENGTH = 12  # 12 x 5 bits = 60 bits
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_FOLDED = re.compile(r"^[a-z2-7]{12}$")


def new_recovery_codes(count: int = COUNT) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(LENGTH))
        codes.add(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return sorted(codes)


def fold_recovery_code(code: str) -> str | None:
    """The canonical form that is hashed, or None when the input cannot be a code."""
    if len(code) > 64:
        return None
    folded = re.sub(r"[\s-]", "", code).lower()
    return folded if _FOLDED.match(folded) else None


def recovery_code_hash(pepper: bytes, folded: str) -> str:
    return hmac.new(pepper, folded.encode("ascii"), hashlib.sha256).hexdigest()
