"""What the keys use cases share: the caller, the view of a key, limits and small rules."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

from keys_service.domain import ApiKey, Facet, KeyState, Rights, Role, Scope, ScopeSet

__all__ = ["DEFAULT_RETENTION", "LAST_USED_RESOLUTION", "UPDATABLE_FIELDS", "Actor", "KeyView"]

_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UPDATABLE_FIELDS: Final = frozenset(
    {"display_name", "scopes", "allowed_cidrs", "allowed_origins", "expire_time"}
)
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)
"""A key whose stored last use is younger than this is not recorded again (no write per request)."""
DEFAULT_RETENTION: Final = timedelta(days=30)
"""How long a deleted key can be restored before the purge job destroys its digests."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller: its user id, its role in the workspace and, for an API key, its scopes.

    ``key_id`` is the calling API key (empty for a user session): its restrictions are read from
    this service's own table, never trusted from metadata. ``aal`` is the session's assurance
    (for a key, the edge forwards the key's recorded assurance).
    """

    user_id: str
    role: Role
    key_scopes: tuple[str, ...] | None = None
    key_id: str = ""
    aal: str = "aal1"

    def sees(self, key: ApiKey) -> bool:
        return self.role >= Role.ADMIN or key.created_by == self.user_id


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as shown to a caller; ``secret`` is set only right after create or rotate."""

    key: ApiKey
    state: KeyState
    secret: str | None = None


def _not_found() -> NotFound:
    return NotFound("API key not found", reason="KEY_NOT_FOUND")


def _scope_set(values: Sequence[str]) -> ScopeSet:
    """A principal's scopes as held; anything unparsable grants nothing."""
    parsed: list[Scope] = []
    for value in values:
        try:
            parsed.append(Scope.parse(value))
        except ValueError:
            continue
    return ScopeSet(parsed)


def _caller_key_invalid() -> PermissionDenied:
    return PermissionDenied("the calling API key is no longer valid", reason="CALLER_KEY_INVALID")


_UPDATE_FACETS: Final = {
    "scopes": Facet.SCOPES,
    "allowed_cidrs": Facet.ALLOWED_CIDRS,
    "allowed_origins": Facet.ALLOWED_ORIGINS,
    "expire_time": Facet.EXPIRY,
}
"""The rights facet each updatable field changes (display_name changes none)."""


def _key_rights(key: ApiKey, role: Role) -> Rights:
    """What ``key``'s secret grants when it acts with ``role`` (its creator's current role)."""
    return Rights.of_key(
        role=role,
        scopes=key.scopes,
        allowed_cidrs=key.allowed_cidrs,
        allowed_origins=key.allowed_origins,
        expires_at=key.expires_at,
        environment=key.environment,
        aal=key.creator_aal,
    )


def _purged() -> NotFound:
    return NotFound("API key was purged", reason="KEY_PURGED")


def _key_name(key: ApiKey) -> str:
    return f"workspaces/{key.workspace_id}/apiKeys/{key.id}"


def _future(when: datetime | None, now: datetime, field: str) -> datetime | None:
    if when is not None and when <= now:
        raise InvalidArgument.field(field, "must be in the future", reason="EXPIRY_INVALID")
    return when


def _strings(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidArgument("expected a list of strings", reason="INVALID_ARGUMENT")
    return [str(v) for v in value]


def _require_active(key: ApiKey, now: datetime) -> None:
    state = key.state(now)
    if state is KeyState.DELETED:
        raise FailedPrecondition("a deleted key cannot be changed", reason="KEY_DELETED")
    if state is KeyState.REVOKED:
        raise FailedPrecondition("a revoked key cannot be changed", reason="KEY_REVOKED")
    if state is KeyState.EXPIRED:
        raise FailedPrecondition("an expired key cannot be changed", reason="KEY_EXPIRED")


def _replace(key: ApiKey, **fields: object) -> ApiKey:
    return dataclasses.replace(key, **fields)  # type: ignore[arg-type]
