"""User accounts: email rules and the soft-delete state (no password material leaves via repr)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

from servicekit.errors import InvalidArgument

MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME = 100
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+$")


@dataclass(slots=True)
class User:
    id: str
    email: str
    display_name: str
    password_hash: str = field(repr=False)
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None = None
    email_verified_at: dt.datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


def lookup_email(raw: str) -> str:
    """The key an email is stored and looked up under: NFKC, trimmed, lower-cased."""
    return unicodedata.normalize("NFKC", raw).strip().lower()


def validate_email(raw: str, field_name: str = "email") -> str:
    email = lookup_email(raw)
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidArgument.field(field_name, "must be an email address", reason="INVALID_EMAIL")
    return email


def validate_display_name(raw: str, field_name: str = "display_name") -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidArgument.field(
            field_name,
            f"must be at most {MAX_DISPLAY_NAME} characters",
            reason="INVALID_DISPLAY_NAME",
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidArgument.field(
            field_name, "must not contain control characters", reason="INVALID_DISPLAY_NAME"
        )
    return name
