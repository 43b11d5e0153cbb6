r"""Webhook triggers: 256-bit tokens, their keyed hash, and the trigger and delivery records.

A token is ``rgwh_`` followed by 32 random bytes in unpadded base64url (43 characters). It is
stored twice, never in clear: sealed by the key manager (requirement R3) and as
HMAC-SHA256(pepper, "railguard/webhook-token\\0" ‖ token), the column a delivery is looked up by.
The pepper lives in settings, not in the database, so a stolen table cannot confirm a guessed
token offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import ClassVar, Final

from servicekit.errors import NotFound

from credentials_service.domain.credential import SecretValue
from credentials_service.domain.soft_delete import SoftDeletable

__all__ = [
    "MIN_PEPPER_BYTES",
    "TOKEN_PREFIX",
    "Delivery",
    "TokenHasher",
    "WebhookTrigger",
    "new_token",
    "trigger_not_found",
    "trigger_purged",
    "webhook_context",
]

MIN_PEPPER_BYTES: Final = 32
TOKEN_PREFIX: Final = "rgwh_"  # noqa: S105 - a public marker for secret scanners
_TOKEN = re.compile(r"rgwh_[A-Za-z0-9_-]{43}")
_HASH_CONTEXT: Final = b"railguard/webhook-token\x00"


def new_token() -> SecretValue:
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    return SecretValue(TOKEN_PREFIX + raw)


def trigger_not_found() -> NotFound:
    """The one answer for an unknown trigger, a deleted one and a wrong token alike."""
    return NotFound("webhook trigger not found", reason="WEBHOOK_TRIGGER_NOT_FOUND")


def trigger_purged() -> NotFound:
    """A purged trigger, to a member of its workspace (deliveries still get the one answer)."""
    return NotFound("webhook trigger was purged", reason="WEBHOOK_TRIGGER_PURGED")


class TokenHasher:
    """HMAC-SHA256 of tokens under the server pepper; the pepper never shows in a repr."""

    __slots__ = ("_pepper",)

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"the webhook pepper must be at least {MIN_PEPPER_BYTES} bytes")
        self._pepper = pepper

    def digest(self, token: SecretValue) -> bytes:
        return hmac.digest(self._pepper, _HASH_CONTEXT + token.reveal().encode(), hashlib.sha256)

    def lookup_digest(self, presented: str) -> bytes | None:
        """The digest to look a presented token up by; None when it cannot be a token at all."""
        if not _TOKEN.fullmatch(presented):
            return None
        return self.digest(SecretValue(presented))

    def __repr__(self) -> str:
        return "TokenHasher(<redacted>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("TokenHasher holds a secret and cannot be pickled")


@dataclass(slots=True)
class WebhookTrigger(SoftDeletable):
    id: str
    workspace_id: str
    display_name: str
    token_ciphertext: str | None = field(repr=False)
    key_version: int
    token_hash: bytes | None = field(repr=False)
    created_at: dt.datetime
    created_by: str
    token_issued_at: dt.datetime
    last_delivery_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None
    purged_at: dt.datetime | None = None

    context_noun: ClassVar[str] = "webhook"

    def purge_due(self, now: dt.datetime, retention: dt.timedelta) -> bool:
        return (
            self.deleted_at is not None
            and self.purged_at is None
            and now >= self.deleted_at + retention
        )

    def mark_deleted(self, now: dt.datetime) -> None:
        """Soft-delete: restorable for the retention window counted from ``now``."""
        self.deleted_at = now

    def purge(self, now: dt.datetime) -> None:
        """Destroy the token's ciphertext and lookup hash, keeping id, name and times."""
        self.token_ciphertext = None
        self.token_hash = None
        self.purged_at = now

    @property
    def sealed(self) -> str | None:
        return self.token_ciphertext

    def matches(self, trigger_id: str, digest: bytes) -> bool:
        """Constant-time: is this the trigger named in the URL, holding this token's hash?"""
        same_id = hmac.compare_digest(self.id.encode(), trigger_id.encode())
        stored = self.token_hash if self.token_hash is not None else bytes(32)
        same_hash = hmac.compare_digest(stored, digest) and self.token_hash is not None
        return same_id & same_hash and not self.deleted


def webhook_context(workspace_id: str, trigger_id: str) -> str:
    return WebhookTrigger.sealing_context(workspace_id, trigger_id)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An accepted delivery: when, how big, what type, from where. The body is not kept."""

    id: str
    workspace_id: str
    trigger_id: str
    received_at: dt.datetime
    size_bytes: int
    content_type: str
    source_ip: str
