"""Single-use tokens mailed to a user: password reset, email verification, email change.

A token is 256 random bits (``secrets.token_urlsafe(32)``, 43 characters). Only a keyed hash is
stored: HMAC-SHA256 under a server-side pepper sealed by the key manager, for the reasons given
for recovery codes (a CSPRNG value has no dictionary; a keyed hash is looked up and consumed in
one atomic ``UPDATE``). A token works once, for one purpose, until it expires; every way it can
fail (unknown, foreign, used, expired, superseded) gives the caller the same answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose name
VERIFY_EMAIL = "verify_email"
CHANGE_EMAIL = "change_email"
PURPOSES = frozenset({PASSWORD_RESET, VERIFY_EMAIL, CHANGE_EMAIL})

TOKEN_BYTES = 32
_WELL_FORMED = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_account_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def account_token_well_formed(token: str) -> bool:
    return bool(_WELL_FORMED.match(token))


def account_token_hash(pepper: bytes, purpose: str, token: str) -> str:
    """The stored form; the purpose is hashed in, so a token of one kind never passes as another."""
    return hmac.new(pepper, f"{purpose}:{token}".encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AccountToken:
    id: str
    purpose: str
    user_id: str
    token_hash: str
    email: str
    created_at: dt.datetime
    expires_at: dt.datetime
    consumed_at: dt.datetime | None = None

    def usable(self, now: dt.datetime) -> bool:
        return self.consumed_at is None and now < self.expires_at
