"""Credentials: providers and their value formats, the masking rule, and the credential record.

A credential's value is a ``SecretValue`` from the moment it is read off the wire: its ``repr``
and ``str`` never show the text, so it cannot leak through a log line, an exception or a debugger
dump by accident. Only the key manager (to encrypt) and the internal UseCredential reply (after
decrypting) call :meth:`SecretValue.reveal`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import ClassVar, Final

from servicekit.errors import InvalidArgument

from credentials_service.domain.soft_delete import SoftDeletable

__all__ = [
    "HIDDEN",
    "MAX_VALUE_BYTES",
    "PROVIDERS",
    "Credential",
    "Provider",
    "SecretValue",
    "check_value",
    "credential_context",
    "mask",
    "parse_provider",
    "validate_display_name",
]

MAX_VALUE_BYTES: Final = 8 * 1024
HIDDEN: Final = "••••"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class SecretValue:
    """A secret string that never shows itself; compare and reveal explicitly."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "SecretValue(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretValue cannot be pickled")


@dataclass(frozen=True, slots=True)
class Provider:
    """A credential provider: its name, the value's format (when known) and its public prefix."""

    name: str
    pattern: re.Pattern[str] | None = None
    prefix: re.Pattern[str] | None = None
    hint: str = ""


PROVIDERS: Final[dict[str, Provider]] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            re.compile(r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}"),
            re.compile(r"sk-(?:(?:proj|svcacct|admin)-)?"),
            "an OpenAI key starts with sk- (sk-proj-, sk-svcacct-, sk-admin-)",
        ),
        Provider(
            "anthropic",
            re.compile(r"sk-ant-[a-z]{3,8}[0-9]{2}-[A-Za-z0-9_-]{20,}"),
            re.compile(r"sk-ant-[a-z]{3,8}[0-9]{2}-"),
            "an Anthropic key starts with sk-ant-",
        ),
        Provider(
            "azure_openai",
            re.compile(r"[A-Za-z0-9]{32,128}"),
            None,
            "an Azure OpenAI key is 32 to 128 letters and digits",
        ),
        Provider(
            "google",
            re.compile(r"AIza[0-9A-Za-z_-]{35}"),
            re.compile(r"AIza"),
            "a Google API key is AIza followed by 35 characters",
        ),
        Provider(
            "aws",
            re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}:[A-Za-z0-9/+=]{40}"),
            re.compile(r"(?:AKIA|ASIA)"),
            "an AWS credential is <access key id>:<secret access key>",
        ),
        Provider("generic"),
    )
}


def parse_provider(name: str, field: str = "credential.provider") -> Provider:
    provider = PROVIDERS.get(name)
    if provider is None:
        raise InvalidArgument.field(
            field, f"must be one of {', '.join(sorted(PROVIDERS))}", reason="UNKNOWN_PROVIDER"
        )
    return provider


def check_value(provider: Provider, raw: str, field: str = "credential.value") -> SecretValue:
    """The value, checked: non-empty, at most 8 KiB, no control characters, the provider's format.

    Values of providers with a known format lose surrounding whitespace (a pasted newline); other
    values are kept byte for byte (PEM and JSON secrets end with newlines). Error messages name
    the rule broken, never the value.
    """
    value = raw.strip() if provider.pattern is not None else raw
    if not value.strip():
        raise InvalidArgument.field(field, "must not be empty", reason="CREDENTIAL_VALUE_EMPTY")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise InvalidArgument.field(
            field, f"must be at most {MAX_VALUE_BYTES} bytes", reason="CREDENTIAL_VALUE_TOO_LARGE"
        )
    if _CONTROL.search(value):
        raise InvalidArgument.field(
            field, "must not contain control characters", reason="CREDENTIAL_VALUE_INVALID"
        )
    if provider.pattern is not None and not provider.pattern.fullmatch(value):
        raise InvalidArgument.field(
            field,
            f"does not match the {provider.name} key format: {provider.hint}",
            reason="CREDENTIAL_FORMAT_MISMATCH",
        )
    return SecretValue(value)


def mask(provider: Provider, value: SecretValue) -> str:
    """The masked form shown instead of the value, computed once when the value is written.

    The provider's public prefix (``sk-proj-``) is kept; of the rest (the body), at most the first
    3 and last 4 characters are shown, and less the shorter it is:

    * body of 24+ characters: ``sk-proj-abc...xyz9``
    * 16 to 23: ``sk-proj-...xyz9``
    * 12 to 15: ``••••z9``
    * shorter, or when a shown character would be whitespace: ``••••``
    """
    text = value.reveal()
    match = provider.prefix.match(text) if provider.prefix is not None else None
    prefix = match.group(0) if match else ""
    body = text[len(prefix) :]
    if len(body) >= 24:
        shown, masked = body[:3] + body[-4:], f"{prefix}{body[:3]}...{body[-4:]}"
    elif len(body) >= 16:
        shown, masked = body[-4:], f"{prefix}...{body[-4:]}"
    elif len(body) >= 12:
        shown, masked = body[-2:], f"{HIDDEN}{body[-2:]}"
    else:
        return HIDDEN
    if any(c.isspace() or not c.isprintable() for c in shown):
        return HIDDEN
    return masked


def validate_display_name(value: str, field: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= 100 or _CONTROL.search(name):
        raise InvalidArgument.field(
            field, "must be 1 to 100 printable characters", reason="INVALID_DISPLAY_NAME"
        )
    return name


@dataclass(slots=True)
class Credential(SoftDeletable):
    """A stored credential: metadata, the masked value and the ciphertext, never the plaintext."""

    id: str
    workspace_id: str
    display_name: str
    provider: str
    masked_value: str
    ciphertext: str | None = field(repr=False)
    key_version: int
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    last_used_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None
    purge_at: dt.datetime | None = None
    purged_at: dt.datetime | None = None

    context_noun: ClassVar[str] = "credential"

    def purge_due(self, now: dt.datetime) -> bool:
        return (
            self.deleted_at is not None
            and self.purged_at is None
            and self.purge_at is not None
            and self.purge_at <= now
        )

    def mark_deleted(self, now: dt.datetime, purge_at: dt.datetime, by: str) -> None:
        """Soft-delete: restorable until ``purge_at``, then due for the purge job."""
        self.deleted_at, self.purge_at = now, purge_at
        self.updated_at, self.updated_by = now, by

    def purge(self, now: dt.datetime) -> None:
        """Destroy the secret material, keeping id, names, provider and times."""
        self.ciphertext = None
        self.masked_value = ""
        self.purged_at = now

    @property
    def sealed(self) -> str | None:
        return self.ciphertext


def credential_context(workspace_id: str, credential_id: str) -> str:
    return Credential.sealing_context(workspace_id, credential_id)
