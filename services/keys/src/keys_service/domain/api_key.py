"""The API key entity, its lifecycle (issue, rotate, revoke) and the verify decision.

Verify order (DESIGN §4), each failure with its own reason::

    format + checksum   parse_key()            KEY_*_INVALID / KEY_CHECKSUM_MISMATCH   401
    lookup              row by keyed hash      KEY_NOT_FOUND (also soft-deleted)        401
    revoked                                    KEY_REVOKED                              401
    expired             now >= expires_at      KEY_EXPIRED                              401
    rotated secret      now >= previous_expires_at  KEY_ROTATED                         401
    workspace alive                            WORKSPACE_DELETED                        403
    client IP           trusted-proxy IP       IP_NOT_ALLOWED                           403
    origin              Origin header          ORIGIN_NOT_ALLOWED                       403
    scope               the RPC's rule         SCOPE_NOT_GRANTED                        403

Time is a parameter. An instant equal to ``expires_at`` is already expired: ``expires_at`` is the
first instant the key no longer works (the JWT ``exp`` convention), so "expires at midnight" never
means "works during midnight's first microsecond on some replicas".

Rotation keeps the key id and issues a new secret; the old one moves to ``previous_secret_hash``
and keeps working until ``previous_expires_at`` (capped by the key's own expiry). At most two
secrets are ever live: rotating again ends the older grace at once.

:func:`verify` is :func:`authenticate` (the secret and the key's own lifecycle) followed by
:func:`authorize` (workspace, IP, origin, scope); the keys service calls them separately so that it
asks the workspaces service whether the workspace is alive only for a key that authenticated.

Soft delete keeps every other field, so :meth:`ApiKey.undelete` restores the key exactly as it was
(a revoked key stays revoked). :meth:`ApiKey.state` folds the timestamps into one state with the
precedence deleted > revoked > expired > active.

Once a deleted key's retention window has ended, :meth:`ApiKey.purge` destroys its secret material
(both keyed hashes) and leaves a tombstone: id, workspace, name, prefix, creator and times, so
that audit events and other references to the key keep resolving. A purged key never
authenticates and can never be restored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    RailguardError,
    Unauthenticated,
)

from .key_format import KeyEnvironment, PresentedKey, generate_key
from .network import IpAddress, IpAllowlist
from .origin import OriginAllowlist
from .pepper import KeyHash, PepperRing
from .scopes import Scope, ScopeSet, ensure_within

__all__ = [
    "MAX_KEY_NAME_CHARS",
    "MAX_ROTATION_GRACE",
    "ApiKey",
    "DenyReason",
    "KeyState",
    "SecretSlot",
    "VerifyContext",
    "Verified",
    "authenticate",
    "authorize",
    "issue_key",
    "validate_name",
    "verify",
]

MAX_KEY_NAME_CHARS: Final = 100
MAX_ROTATION_GRACE: Final = timedelta(days=7)


class DenyReason(StrEnum):
    """Stable reasons :func:`verify` raises after the format checks."""

    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_EXPIRED = "KEY_EXPIRED"
    KEY_ROTATED = "KEY_ROTATED"
    WORKSPACE_DELETED = "WORKSPACE_DELETED"
    IP_NOT_ALLOWED = "IP_NOT_ALLOWED"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
    SCOPE_NOT_GRANTED = "SCOPE_NOT_GRANTED"


_UNAUTHENTICATED: Final = frozenset(
    {
        DenyReason.KEY_NOT_FOUND,
        DenyReason.KEY_REVOKED,
        DenyReason.KEY_EXPIRED,
        DenyReason.KEY_ROTATED,
    }
)
"""The caller's credential is not (or no longer) valid: 401. Everything else is 403."""


class KeyState(StrEnum):
    """The lifecycle state shown to users, derived from the key's timestamps."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    DELETED = "deleted"


class SecretSlot(StrEnum):
    """Which of a key's (at most two) secrets a request presented."""

    CURRENT = "current"
    PREVIOUS = "previous"


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """A stored API key: everything but the secret, which exists here only as a keyed hash."""

    id: str
    workspace_id: str
    name: str
    environment: KeyEnvironment
    display_prefix: str
    secret_hash: KeyHash | None  # None only once purged
    scopes: ScopeSet
    allowed_cidrs: IpAllowlist = field(default_factory=IpAllowlist)
    allowed_origins: OriginAllowlist = field(default_factory=OriginAllowlist)
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    deleted_at: datetime | None = None
    previous_secret_hash: KeyHash | None = None
    previous_expires_at: datetime | None = None
    rotated_at: datetime | None = None
    updated_at: datetime | None = None
    last_used_at: datetime | None = None
    purged_at: datetime | None = None
    creator_aal: str = "aal1"  # the creator's assurance when it created (or last rotated) the key

    def __post_init__(self) -> None:
        for name in (
            "created_at",
            "expires_at",
            "revoked_at",
            "deleted_at",
            "previous_expires_at",
            "rotated_at",
            "updated_at",
            "last_used_at",
            "purged_at",
        ):
            _require_aware(name, getattr(self, name))
        if (self.previous_secret_hash is None) != (self.previous_expires_at is None):
            raise ValueError("previous_secret_hash and previous_expires_at go together")
        if (self.secret_hash is None) != (self.purged_at is not None):
            raise ValueError("a key has a secret hash exactly until it is purged")
        if self.purged_at is not None and self.deleted_at is None:
            raise ValueError("only a deleted key can be purged")

    @property
    def purged(self) -> bool:
        return self.purged_at is not None

    def purge_due(self, now: datetime, retention: timedelta) -> bool:
        """Whether the key is deleted, not yet purged, and its retention window has ended."""
        return (
            self.deleted_at is not None
            and self.purged_at is None
            and now >= self.deleted_at + retention
        )

    def purge(self, *, now: datetime) -> ApiKey:
        """Destroy the secret material of a deleted key; what is left is a tombstone."""
        _require_aware("now", now)
        if self.deleted_at is None:
            raise FailedPrecondition("only a deleted key can be purged", reason="KEY_NOT_DELETED")
        if self.purged_at is not None:
            return self
        return dataclasses.replace(
            self,
            secret_hash=None,
            previous_secret_hash=None,
            previous_expires_at=None,
            purged_at=now,
            updated_at=now,
        )

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def state(self, now: datetime) -> KeyState:
        if self.deleted_at is not None:
            return KeyState.DELETED
        if self.revoked_at is not None:
            return KeyState.REVOKED
        if self.is_expired(now):
            return KeyState.EXPIRED
        return KeyState.ACTIVE

    def previous_secret_live(self, now: datetime) -> bool:
        """Whether the pre-rotation secret still works at ``now``."""
        return self.previous_expires_at is not None and now < self.previous_expires_at

    def delete(self, *, now: datetime) -> ApiKey:
        """Soft-delete (idempotent): the key stops working and can be restored."""
        _require_aware("now", now)
        if self.deleted_at is not None:
            return self
        return dataclasses.replace(self, deleted_at=now, updated_at=now)

    def undelete(self, *, now: datetime) -> ApiKey:
        """Restore a soft-deleted key exactly as it was before deletion."""
        _require_aware("now", now)
        if self.purged_at is not None:
            raise FailedPrecondition("the key was purged", reason="KEY_PURGED")
        if self.deleted_at is None:
            raise FailedPrecondition("the key is not deleted", reason="KEY_NOT_DELETED")
        return dataclasses.replace(self, deleted_at=None, updated_at=now)

    def revoke(self, *, now: datetime) -> ApiKey:
        """Revoke for good (idempotent: the first revocation time is kept); ends any grace."""
        _require_aware("now", now)
        if self.revoked_at is not None:
            return self
        return dataclasses.replace(
            self,
            revoked_at=now,
            updated_at=now,
            previous_secret_hash=None,
            previous_expires_at=None,
        )

    def rotate(
        self,
        ring: PepperRing,
        *,
        now: datetime,
        grace: timedelta,
        by: str | None = None,
        by_aal: str | None = None,
    ) -> tuple[ApiKey, PresentedKey]:
        """Issue a new secret for the same key id; the old one works for ``grace`` more.

        ``by`` (the rotating user) re-binds the key: it becomes the creator, so the new secret
        acts with the rotator's role, and ``by_aal`` becomes the key's recorded assurance. When
        the creator changes, the previous secret ends at once: it was held under someone else's
        authority and must not start acting as the rotator.
        """
        _require_aware("now", now)
        if self.revoked_at is not None or self.deleted_at is not None:
            raise FailedPrecondition(
                "a revoked or deleted key cannot be rotated", reason="KEY_REVOKED"
            )
        if self.is_expired(now):
            raise FailedPrecondition("an expired key cannot be rotated", reason="KEY_EXPIRED")
        if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
            raise InvalidArgument.field(
                "grace_period",
                f"must be between 0 and {MAX_ROTATION_GRACE.days} days",
                reason="GRACE_PERIOD_INVALID",
            )
        secret = generate_key(self.environment)
        creator = by if by is not None else self.created_by
        grace_end = now + grace if creator == self.created_by else now
        if self.expires_at is not None:
            grace_end = min(grace_end, self.expires_at)
        keep_old = grace_end > now
        rotated = dataclasses.replace(
            self,
            created_by=creator,
            creator_aal=by_aal if by_aal is not None else self.creator_aal,
            display_prefix=secret.display_prefix,
            secret_hash=ring.hash(secret),
            previous_secret_hash=self.secret_hash if keep_old else None,
            previous_expires_at=grace_end if keep_old else None,
            rotated_at=now,
            updated_at=now,
        )
        return rotated, secret


def validate_name(name: str, field: str = "name") -> str:
    """Check a display name (also on update); returns it unchanged."""
    _validate_name(name, field)
    return name


def _validate_name(name: str, field: str = "name") -> None:
    if not name.strip():
        raise InvalidArgument.field(field, "must not be blank", reason="NAME_INVALID")
    if len(name) > MAX_KEY_NAME_CHARS:
        raise InvalidArgument.field(
            field, f"at most {MAX_KEY_NAME_CHARS} characters", reason="NAME_INVALID"
        )
    if not name.isprintable():
        raise InvalidArgument.field(
            field, "must not contain control characters", reason="NAME_INVALID"
        )


def issue_key(
    *,
    key_id: str,
    workspace_id: str,
    name: str,
    environment: KeyEnvironment,
    scopes: ScopeSet,
    creator_rights: ScopeSet,
    created_by: str,
    now: datetime,
    ring: PepperRing,
    allowed_cidrs: IpAllowlist | None = None,
    allowed_origins: OriginAllowlist | None = None,
    expires_at: datetime | None = None,
    creator_aal: str = "aal1",
) -> tuple[ApiKey, PresentedKey]:
    """Mint a key: the entity to store and the secret to show exactly once."""
    _require_aware("now", now)
    _require_aware("expires_at", expires_at)
    _validate_name(name)
    if not scopes.scopes:
        raise InvalidArgument.field(
            "scopes", "at least one scope is required", reason="SCOPE_INVALID"
        )
    ensure_within(scopes, creator_rights)
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument.field("expire_time", "must be in the future", reason="EXPIRY_INVALID")
    secret = generate_key(environment)
    key = ApiKey(
        id=key_id,
        workspace_id=workspace_id,
        name=name,
        environment=environment,
        display_prefix=secret.display_prefix,
        secret_hash=ring.hash(secret),
        scopes=scopes,
        allowed_cidrs=allowed_cidrs or IpAllowlist(),
        allowed_origins=allowed_origins or OriginAllowlist(),
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
        updated_at=now,
        creator_aal=creator_aal,
    )
    return key, secret


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyContext:
    """What the request brings besides the key; ``now`` comes from the caller's clock.

    ``client_ip`` must be derived from the trusted-proxy chain. ``origin`` is the ``Origin``
    header or None when absent. ``required_scope`` is the RPC's rule; None means "authenticate
    only" and must be chosen deliberately (it is a required argument for that reason).
    """

    now: datetime
    workspace_active: bool
    client_ip: str | IpAddress | None
    origin: str | None
    required_scope: Scope | None


@dataclass(frozen=True, slots=True)
class Verified:
    """A successful verification: the key, which secret matched, and whether to rehash it."""

    key: ApiKey
    slot: SecretSlot
    needs_rehash: bool

    @property
    def secret_expires_at(self) -> datetime | None:
        """The first instant the presented secret stops working; a cache must not outlive it."""
        if self.slot is SecretSlot.PREVIOUS:
            return self.key.previous_expires_at  # already capped by the key's own expiry
        return self.key.expires_at


def _deny(reason: DenyReason, message: str, key: ApiKey, **extra: str) -> RailguardError:
    cls = Unauthenticated if reason in _UNAUTHENTICATED else PermissionDenied
    return cls(message, reason=reason, metadata={"key_id": key.id, **extra})


def verify(
    presented: PresentedKey, found: ApiKey | None, ring: PepperRing, ctx: VerifyContext
) -> Verified:
    """Decide whether ``presented`` (already parsed) may make this request; raise otherwise.

    ``found`` is the row the adapter looked up by :meth:`PepperRing.lookup_hashes` against both
    the current and the previous hash column (None when nothing matched).
    """
    verified = authenticate(presented, found, ring, now=ctx.now)
    authorize(verified.key, ctx)
    return verified


def authenticate(
    presented: PresentedKey, found: ApiKey | None, ring: PepperRing, *, now: datetime
) -> Verified:
    """The key's own checks, in order: lookup, revoked, expired, rotated-out secret.

    The hashes are checked again here in constant time, so a loose adapter query can never
    admit a wrong secret.
    """
    _require_aware("now", now)
    if found is None or found.deleted_at is not None or found.secret_hash is None:
        raise Unauthenticated("API key is not valid", reason=DenyReason.KEY_NOT_FOUND)
    if ring.matches(presented, found.secret_hash):
        slot = SecretSlot.CURRENT
    elif found.previous_secret_hash is not None and ring.matches(
        presented, found.previous_secret_hash
    ):
        slot = SecretSlot.PREVIOUS
    else:
        raise Unauthenticated("API key is not valid", reason=DenyReason.KEY_NOT_FOUND)

    if found.revoked_at is not None:
        raise _deny(DenyReason.KEY_REVOKED, "API key has been revoked", found)
    if found.is_expired(now):
        raise _deny(DenyReason.KEY_EXPIRED, "API key has expired", found)
    if slot is SecretSlot.PREVIOUS and not found.previous_secret_live(now):
        raise _deny(DenyReason.KEY_ROTATED, "API key secret was rotated; use the new one", found)
    needs_rehash = slot is SecretSlot.CURRENT and ring.needs_rehash(found.secret_hash)
    return Verified(found, slot, needs_rehash)


def authorize(key: ApiKey, ctx: VerifyContext) -> None:
    """The request's checks, in order: workspace alive, client IP, origin, scope."""
    if not ctx.workspace_active:
        raise _deny(DenyReason.WORKSPACE_DELETED, "the key's workspace has been deleted", key)
    if not key.allowed_cidrs.allows(ctx.client_ip):
        raise _deny(DenyReason.IP_NOT_ALLOWED, "client IP address is not allowed for this key", key)
    if not key.allowed_origins.allows(ctx.origin):
        raise _deny(
            DenyReason.ORIGIN_NOT_ALLOWED, "request origin is not allowed for this key", key
        )
    if ctx.required_scope is not None and not key.scopes.covers(ctx.required_scope):
        scope = str(ctx.required_scope)
        raise _deny(DenyReason.SCOPE_NOT_GRANTED, f"API key lacks scope {scope}", key, scope=scope)
