"""A signed-in session's tokens, and when to refresh them."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["REFRESH_MARGIN_SECONDS", "Tokens"]

# refresh this long before the access token expires, so a request never carries a dying token
REFRESH_MARGIN_SECONDS = 30.0


def _jwt_exp(token: str) -> float:
    """The ``exp`` claim read without verification (only to schedule a refresh); 0 if absent."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims.get("exp", 0))
    except (IndexError, ValueError, TypeError, AttributeError):
        return 0.0


@dataclass(frozen=True, slots=True)
class Tokens:
    """An access token (JWT, minutes) and the refresh token that renews it (days)."""

    access_token: str
    refresh_token: str = ""
    access_expires_at: float = 0.0  # epoch seconds
    refresh_expires_at: float = 0.0

    @classmethod
    def from_pair(cls, pair: dict[str, Any], now: float | None = None) -> Tokens:
        """From the API's ``TokenPair`` (``accessToken``, ``expiresIn``, ``refreshToken`` …)."""
        now = time.time() if now is None else now
        access = str(pair.get("accessToken", ""))
        expires_in = float(pair.get("expiresIn") or 0)
        refresh_in = float(pair.get("refreshExpiresIn") or 0)
        return cls(
            access_token=access,
            refresh_token=str(pair.get("refreshToken", "")),
            access_expires_at=now + expires_in if expires_in else _jwt_exp(access),
            refresh_expires_at=now + refresh_in if refresh_in else 0.0,
        )

    def needs_refresh(self, now: float | None = None) -> bool:
        if not self.refresh_token or not self.access_expires_at:
            return False
        now = time.time() if now is None else now
        return now >= self.access_expires_at - REFRESH_MARGIN_SECONDS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokens:
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token", "")),
            access_expires_at=float(data.get("access_expires_at", 0)),
            refresh_expires_at=float(data.get("refresh_expires_at", 0)),
        )

    def __repr__(self) -> str:  # never print a token
        return f"Tokens(access_expires_at={self.access_expires_at:.0f})"
