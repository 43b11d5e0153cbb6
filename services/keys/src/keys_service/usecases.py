"""Use cases of the keys service: fetch → check → act → commit, primitives in and out.

Who may do what (DESIGN §4 role table, decided here):

* Every caller needs at least the User role in the workspace (the edge resolved it into the
  principal; the interceptor checks it again). A caller that is an API key acts as its creator,
  with that creator's current role, and is further bounded by its own scopes.
* **Visibility.** A User sees, updates, rotates, revokes, deletes and restores only the keys it
  created; an Admin or Owner every key of the workspace. A key the caller may not see is
  NOT_FOUND, exactly like a missing one or another workspace's.
* **Scope ceiling.** A new key's scopes must lie within the caller's role rights (derived from the
  access rules, :class:`~keys_service.domain.ScopePolicy`) and, for an API-key caller, within its
  own scopes. Changing another user's key's scopes also keeps them within that creator's rights.
* **Grant rule** (``domain.grant``): no caller obtains a key wider than itself. Create and
  rotate check every facet (role, scopes, CIDRs, origins, expiry, environment, assurance)
  against the caller's rights; update checks the facets it changes. A calling API key's
  restrictions are read from this service's table. Rotation re-binds the key to the rotator.
* **Mutations** are refused while the workspace is deleted (FAILED_PRECONDITION,
  ``WORKSPACE_DELETED``); revoked, expired and deleted keys cannot be updated.
* After each committed change that can make a cached verification stale (update, revoke, rotate,
  delete, undelete) an invalidation is published, so every edge drops the key within a second.

Verify parses the key offline first (format + checksum) and only then reads the database; the
workspaces service is asked about the workspace (cached ≤ 1 s) only for a key that authenticated.

**Audit (DESIGN R16).** Every committed mutation records one event (``apiKey.create``, ``.update``,
``.revoke``, ``.rotate``, ``.delete``, ``.undelete``, ``.purge``) in the service's outbox inside
the same transaction; a no-op (an idempotent retry, revoking a revoked key) records nothing.
Verify writes nothing for a success (that would be a write per request); a refusal of a *known*
key (revoked, expired, rotated-out, deleted, workspace deleted, IP, origin, scope) records one
``apiKey.verify`` event with outcome DENIED, at most once per key and reason per minute
(:class:`DenialThrottle`, in memory, per replica). No event carries a key, a digest or a prefix.

**Retention.** A deleted key can be restored for ``retention`` (30 days by default); then
:class:`KeysRetention` purges it: both digests are destroyed and the row stays as a tombstone.
A purged key is NOT_FOUND with reason ``KEY_PURGED`` to whoever could see it (anyone else gets
``KEY_NOT_FOUND`` as for any invisible key), and can never be restored.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

from servicekit.audit import AuditEvent, AuditOrigin, Outcome, format_time
from servicekit.clock import Clock
from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RailguardError,
)
from servicekit.pagination import encode_token, page_request
from servicekit.ports import ReadOnlyUnitOfWork, UnitOfWork

from keys_service.domain import (
    ApiKey,
    DenyReason,
    Facet,
    IpAllowlist,
    KeyEnvironment,
    KeyHash,
    KeyState,
    OriginAllowlist,
    PepperRing,
    Rights,
    Role,
    Scope,
    ScopePolicy,
    ScopeRule,
    ScopeSet,
    Verified,
    VerifyContext,
    authenticate,
    authorize,
    ensure_grant,
    ensure_within,
    issue_key,
    parse_key,
    validate_name,
)

__all__ = [
    "DEFAULT_RETENTION",
    "AllowedOrigins",
    "LAST_USED_RESOLUTION",
    "UPDATABLE_FIELDS",
    "Actor",
    "AuditOutboxPort",
    "DenialThrottle",
    "InvalidationPublisher",
    "KeyEvent",
    "KeyRepository",
    "KeyView",
    "KeysService",
    "KeysRetention",
    "KeysUnitOfWork",
    "UsageRecorder",
    "WorkspaceDirectory",
    "WorkspaceStatus",
]

_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UPDATABLE_FIELDS: Final = frozenset(
    {"display_name", "scopes", "allowed_cidrs", "allowed_origins", "expire_time"}
)
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)
"""A key whose stored last use is younger than this is not recorded again (no write per request)."""
DEFAULT_RETENTION: Final = timedelta(days=30)
"""How long a deleted key can be restored before the purge job destroys its digests."""

_log = logging.getLogger("keys_service")


# ---- ports -------------------------------------------------------------------------------------


class KeyRepository(Protocol):
    async def get(self, workspace_id: str, key_id: str, *, lock: bool = False) -> ApiKey | None: ...
    async def by_request_id(
        self, workspace_id: str, created_by: str, request_id: str
    ) -> ApiKey | None: ...
    async def add(self, key: ApiKey, request_id: str | None) -> None: ...
    async def save(self, key: ApiKey) -> None: ...
    async def list(
        self,
        workspace_id: str,
        *,
        created_by: str | None,
        after: str,
        limit: int,
        show_deleted: bool,
    ) -> list[ApiKey]: ...
    async def find_by_digests(self, digests: Sequence[bytes]) -> ApiKey | None: ...
    async def rehash(self, key_id: str, old: KeyHash, new: KeyHash) -> None: ...
    async def touch(self, key_id: str, when: datetime) -> None: ...
    async def deleted_unpurged(
        self, deleted_before: datetime, after: str, limit: int
    ) -> builtins.list[ApiKey]: ...


class AuditOutboxPort(Protocol):
    """The service's audit outbox, bound to the unit of work's transaction."""

    async def record(self, event: AuditEvent) -> None: ...


class KeysUnitOfWork(UnitOfWork, Protocol):
    """The keys use cases' transaction (``adapters.repository.SqlKeysUnitOfWork`` in production)."""

    @property
    def keys(self) -> KeyRepository: ...
    @property
    def outbox(self) -> AuditOutboxPort: ...


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"
    MISSING = "missing"


class WorkspaceDirectory(Protocol):
    """The workspaces service, as the keys service needs it."""

    async def status(self, workspace_id: str) -> WorkspaceStatus: ...
    async def role_of(self, user_id: str, workspace_id: str) -> Role: ...


class KeyEvent(StrEnum):
    UPDATED = "updated"
    REVOKED = "revoked"
    ROTATED = "rotated"
    DELETED = "deleted"
    UNDELETED = "undeleted"


class InvalidationPublisher(Protocol):
    """Tells every verifier (edge caches) that what it knows about a key is stale."""

    async def key_changed(self, key: ApiKey, event: KeyEvent) -> None: ...


class UsageRecorder(Protocol):
    """Collects last-used times and writes them in batches, never one write per request."""

    def record(self, key_id: str, when: datetime) -> None: ...


# ---- values ------------------------------------------------------------------------------------


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


def _no_origin() -> AuditOrigin:
    return AuditOrigin(actor="")


def _joined(values: Sequence[str], limit: int = 256) -> str:
    """``values`` comma-joined, cut at a whole item to fit an audit metadata value."""
    out = ""
    for value in values:
        candidate = f"{out},{value}" if out else value
        if len(candidate) > limit - 2:
            return f"{out},…"
        out = candidate
    return out


class DenialThrottle:
    """At most one audited refusal per key and reason per ``window`` (in memory, per replica).

    Bounded: once ``max_entries`` are held, entries older than the window are dropped, and if
    that is not enough the table is cleared (an attacker cycling through many known keys can
    at worst cause one event per key and reason per window, which is what the limit allows).
    """

    def __init__(self, window: timedelta = timedelta(minutes=1), max_entries: int = 10_000) -> None:
        self._window, self._max = window, max_entries
        self._last: dict[tuple[str, str], datetime] = {}

    def allow(self, key_id: str, reason: str, now: datetime) -> bool:
        slot = (key_id, reason)
        last = self._last.get(slot)
        if last is not None and now - last < self._window:
            return False
        if slot not in self._last and len(self._last) >= self._max:
            self._last = {k: t for k, t in self._last.items() if now - t < self._window}
            if len(self._last) >= self._max:
                self._last.clear()
        self._last[slot] = now
        return True


_AUDITED_DENIALS: Final = frozenset(
    {
        DenyReason.KEY_REVOKED,
        DenyReason.KEY_EXPIRED,
        DenyReason.KEY_ROTATED,
        DenyReason.WORKSPACE_DELETED,
        DenyReason.IP_NOT_ALLOWED,
        DenyReason.ORIGIN_NOT_ALLOWED,
        DenyReason.SCOPE_NOT_GRANTED,
    }
)


def _future(when: datetime | None, now: datetime, field: str) -> datetime | None:
    if when is not None and when <= now:
        raise InvalidArgument.field(field, "must be in the future", reason="EXPIRY_INVALID")
    return when


class KeysService:
    def __init__(
        self,
        uow: Callable[[], KeysUnitOfWork],
        clock: Clock,
        ring: PepperRing,
        policy: ScopePolicy,
        workspaces: WorkspaceDirectory,
        publisher: InvalidationPublisher,
        usage: UsageRecorder,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        *,
        origin: Callable[[], AuditOrigin] = _no_origin,
        after_commit: Callable[[], None] = lambda: None,
        retention: timedelta = DEFAULT_RETENTION,
        denials: DenialThrottle | None = None,
        read_uow: Callable[[], KeysUnitOfWork] | None = None,
    ) -> None:
        """``origin`` tells who acts and from where for audit events (the RPC context in
        production); ``after_commit`` runs once an audited change committed (it wakes the relay).
        ``read_uow`` (default ``uow``) opens the read-only unit of VerifyApiKey's one lookup."""
        self._uow, self._clock, self._ring, self._policy = uow, clock, ring, policy
        self._read_uow = read_uow or uow
        self._workspaces, self._publisher, self._usage = workspaces, publisher, usage
        self._new_id, self._origin, self._after_commit = new_id, origin, after_commit
        self._retention = retention
        self._denials = denials or DenialThrottle()

    # ---- helpers ------------------------------------------------------------------------------

    def _view(self, key: ApiKey, secret: str | None = None) -> KeyView:
        return KeyView(key, key.state(self._clock.now()), secret)

    async def _require_live(self, ws_id: str) -> None:
        status = await self._workspaces.status(ws_id)
        if status is WorkspaceStatus.MISSING:
            raise NotFound("workspace not found", reason="WORKSPACE_NOT_FOUND")
        if status is WorkspaceStatus.DELETED:
            raise FailedPrecondition("the workspace is deleted", reason="WORKSPACE_DELETED")

    async def _visible(
        self, uow: KeysUnitOfWork, actor: Actor, ws_id: str, key_id: str, *, lock: bool = False
    ) -> ApiKey:
        key = await uow.keys.get(ws_id, key_id, lock=lock)
        if key is None or not actor.sees(key):
            raise _not_found()
        if key.purged:
            raise _purged()  # only to a caller who could see the key
        return key

    async def _audit(
        self,
        uow: KeysUnitOfWork,
        actor: Actor,
        key: ApiKey,
        action: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Record ``action`` on ``key`` in the outbox, inside the caller's transaction."""
        event = self._origin().event(
            on_behalf_of=f"user:{actor.user_id}",
            workspace_id=key.workspace_id,
            action=action,
            target=_key_name(key),
            time=self._clock.now(),
            metadata=metadata,
        )
        await uow.outbox.record(event)

    async def _check_ceiling(
        self, actor: Actor, scopes: ScopeSet, ws_id: str, creator: str
    ) -> None:
        """The key's scopes within the caller's rights, its own scopes, and its creator's rights."""
        ensure_within(scopes, self._policy.rights_of(actor.role))
        if actor.key_scopes is not None:
            ensure_within(scopes, _scope_set(actor.key_scopes))
        if creator != actor.user_id:
            # An Admin editing someone else's key cannot lift it above its creator's rights.
            creator_role = await self._workspaces.role_of(creator, ws_id)
            ensure_within(scopes, self._policy.rights_of(creator_role))

    async def _caller_rights(self, uow: KeysUnitOfWork, actor: Actor, ws_id: str) -> Rights:
        """The caller's own rights: its role's, and for an API key its key's restrictions too.

        The calling key is read from this service's table (authoritative and current); a key
        that is gone, revoked, expired or of another workspace grants nothing (fail closed).
        """
        role_rights = self._policy.rights_of(actor.role)
        if actor.key_scopes is not None:
            held = _scope_set(actor.key_scopes)
            role_rights = ScopeSet(
                s for s in role_rights.scopes if held.covers(s)
            )  # what both the role and the key's scopes (as forwarded) allow
        if not actor.key_id:
            return Rights.of_user(actor.role, role_rights, actor.aal)
        key = await uow.keys.get(ws_id, actor.key_id)
        now = self._clock.now()
        if key is None or key.purged or key.state(now) is not KeyState.ACTIVE:
            raise _caller_key_invalid()
        effective = ScopeSet(
            s for s in role_rights.scopes if key.scopes.covers(s)
        )  # the key's scopes, never above its creator's role
        return dataclasses.replace(_key_rights(key, actor.role), scopes=effective)

    def _parse_scopes(self, values: Sequence[str], field: str) -> ScopeSet:
        return ScopeSet.parse(values, self._policy.catalogue, field=field)

    async def _publish(self, key: ApiKey, event: KeyEvent) -> None:
        await self._publisher.key_changed(key, event)

    # ---- use cases ----------------------------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        ws_id: str,
        *,
        name: str,
        environment: str,
        scopes: Sequence[str],
        allowed_cidrs: Sequence[str],
        allowed_origins: Sequence[str],
        expires_at: datetime | None,
        request_id: str,
    ) -> KeyView:
        """Mint a key; the view carries the secret, which is never stored or shown again."""
        now = self._clock.now()
        validate_name(name, "api_key.display_name")
        try:
            env = KeyEnvironment(environment)
        except ValueError:
            raise InvalidArgument.field(
                "api_key.environment",
                "must be ENVIRONMENT_LIVE or ENVIRONMENT_TEST",
                reason="ENVIRONMENT_INVALID",
            ) from None
        scope_set = self._parse_scopes(scopes, "api_key.scopes")
        cidrs = IpAllowlist.parse(allowed_cidrs, field="api_key.allowed_cidrs")
        origins = OriginAllowlist.parse(allowed_origins, field="api_key.allowed_origins")
        _future(expires_at, now, "api_key.expire_time")
        if request_id and not _ID.match(request_id):
            raise InvalidArgument.field(
                "request_id", "must be 1-64 of [A-Za-z0-9_-]", reason="INVALID_REQUEST_ID"
            )
        await self._require_live(ws_id)
        await self._check_ceiling(actor, scope_set, ws_id, actor.user_id)
        async with self._uow() as uow:
            holder = await self._caller_rights(uow, actor, ws_id)
            ensure_grant(
                Rights.of_key(
                    role=actor.role,
                    scopes=scope_set,
                    allowed_cidrs=cidrs,
                    allowed_origins=origins,
                    expires_at=expires_at,
                    environment=env,
                    aal=holder.aal,
                ),
                holder,
            )
            if request_id:
                existing = await uow.keys.by_request_id(ws_id, actor.user_id, request_id)
                if existing is not None:
                    return self._view(existing)
            key, secret = issue_key(
                key_id=self._new_id(),
                workspace_id=ws_id,
                name=name,
                environment=env,
                scopes=scope_set,
                creator_rights=self._policy.rights_of(actor.role),
                created_by=actor.user_id,
                now=now,
                ring=self._ring,
                allowed_cidrs=cidrs,
                allowed_origins=origins,
                expires_at=expires_at,
                creator_aal=holder.aal,
            )
            await uow.keys.add(key, request_id or None)
            metadata = {
                "environment": env.value,
                "scopes": _joined(scope_set.as_strings()),
                "created_by": actor.user_id,
            }
            if expires_at is not None:
                metadata["expire_time"] = format_time(expires_at)
            await self._audit(uow, actor, key, "apiKey.create", metadata)
            await uow.commit()
        self._after_commit()
        return self._view(key, secret.reveal())

    async def get(self, actor: Actor, ws_id: str, key_id: str) -> KeyView:
        await self._require_live(ws_id)
        async with self._uow() as uow:
            return self._view(await self._visible(uow, actor, ws_id, key_id))

    async def list(
        self, actor: Actor, ws_id: str, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[KeyView], str]:
        await self._require_live(ws_id)
        owner_filter = None if actor.role >= Role.ADMIN else actor.user_id
        query = f"apiKeys:{ws_id}:{owner_filter or '*'}:{show_deleted}"
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            keys = await uow.keys.list(
                ws_id,
                created_by=owner_filter,
                after=page.cursor,
                limit=page.size + 1,
                show_deleted=show_deleted,
            )
        more = len(keys) > page.size
        keys = keys[: page.size]
        token = encode_token(keys[-1].id, query) if more and keys else ""
        return [self._view(k) for k in keys], token

    async def update(  # noqa: C901 - one branch per updatable field of the mask
        self, actor: Actor, ws_id: str, key_id: str, changes: Mapping[str, object]
    ) -> KeyView:
        """Apply ``changes`` (field → new value; ``expire_time`` None clears the expiry)."""
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown or not changes:
            raise InvalidArgument.field(
                "update_mask",
                f"can update only {', '.join(sorted(UPDATABLE_FIELDS))}",
                reason="INVALID_UPDATE_MASK",
            )
        now = self._clock.now()
        fields: dict[str, object] = {}
        if "display_name" in changes:
            fields["name"] = validate_name(str(changes["display_name"]), "api_key.display_name")
        if "scopes" in changes:
            fields["scopes"] = self._parse_scopes(_strings(changes["scopes"]), "api_key.scopes")
        if "allowed_cidrs" in changes:
            fields["allowed_cidrs"] = IpAllowlist.parse(
                _strings(changes["allowed_cidrs"]), field="api_key.allowed_cidrs"
            )
        if "allowed_origins" in changes:
            fields["allowed_origins"] = OriginAllowlist.parse(
                _strings(changes["allowed_origins"]), field="api_key.allowed_origins"
            )
        if "expire_time" in changes:
            when = changes["expire_time"]
            if when is not None and not isinstance(when, datetime):
                raise InvalidArgument.field("api_key.expire_time", "must be a timestamp")
            fields["expires_at"] = _future(when, now, "api_key.expire_time")
        await self._require_live(ws_id)
        async with self._uow() as uow:
            key = await self._visible(uow, actor, ws_id, key_id, lock=True)
            _require_active(key, now)
            holder = await self._caller_rights(uow, actor, ws_id)
            if "scopes" in fields:
                scopes = fields["scopes"]
                assert isinstance(scopes, ScopeSet)
                await self._check_ceiling(actor, scopes, ws_id, key.created_by)
            facets = {_UPDATE_FACETS[f] for f in changes if f in _UPDATE_FACETS}
            if facets:
                # only narrower than the caller: a restricted key cannot shed a restriction
                wanted = _replace(key, **fields)
                ensure_grant(_key_rights(wanted, actor.role), holder, facets=facets)
            if "expires_at" in fields and key.previous_expires_at is not None:
                # keep the invariant "a rotation grace never outlives the key"
                new_expiry = fields["expires_at"]
                assert new_expiry is None or isinstance(new_expiry, datetime)
                if new_expiry is not None and key.previous_expires_at > new_expiry:
                    fields["previous_expires_at"] = new_expiry
            key = _replace(key, updated_at=now, **fields)
            await uow.keys.save(key)
            metadata = {"fields": ",".join(sorted(changes))}
            if "scopes" in fields:
                metadata["scopes"] = _joined(key.scopes.as_strings())
            if "expires_at" in fields:
                metadata["expire_time"] = format_time(key.expires_at) if key.expires_at else ""
            await self._audit(uow, actor, key, "apiKey.update", metadata)
            await uow.commit()
        self._after_commit()
        await self._publish(key, KeyEvent.UPDATED)
        return self._view(key)

    async def revoke(self, actor: Actor, ws_id: str, key_id: str) -> KeyView:
        await self._require_live(ws_id)
        async with self._uow() as uow:
            key = await self._visible(uow, actor, ws_id, key_id, lock=True)
            revoked = key.revoke(now=self._clock.now())
            if revoked is not key:
                await uow.keys.save(revoked)
                await self._audit(uow, actor, revoked, "apiKey.revoke")
                await uow.commit()
        if revoked is not key:
            self._after_commit()
        await self._publish(revoked, KeyEvent.REVOKED)
        return self._view(revoked)

    async def rotate(self, actor: Actor, ws_id: str, key_id: str, grace: timedelta) -> KeyView:
        await self._require_live(ws_id)
        async with self._uow() as uow:
            key = await self._visible(uow, actor, ws_id, key_id, lock=True)
            holder = await self._caller_rights(uow, actor, ws_id)
            rotated, secret = key.rotate(
                self._ring,
                now=self._clock.now(),
                grace=grace,
                by=actor.user_id,
                by_aal=holder.aal,
            )
            # the rotator receives the secret: the re-bound key must lie within its rights
            ensure_grant(_key_rights(rotated, actor.role), holder)
            await uow.keys.save(rotated)
            metadata = {"grace_seconds": str(int(grace.total_seconds()))}
            if rotated.created_by != key.created_by:
                metadata["previous_created_by"] = key.created_by
                metadata["created_by"] = rotated.created_by
            if rotated.previous_expires_at is not None:
                metadata["grace_end_time"] = format_time(rotated.previous_expires_at)
            await self._audit(uow, actor, rotated, "apiKey.rotate", metadata)
            await uow.commit()
        self._after_commit()
        await self._publish(rotated, KeyEvent.ROTATED)
        return self._view(rotated, secret.reveal())

    async def delete(self, actor: Actor, ws_id: str, key_id: str) -> KeyView:
        await self._require_live(ws_id)
        async with self._uow() as uow:
            key = await self._visible(uow, actor, ws_id, key_id, lock=True)
            deleted = key.delete(now=self._clock.now())
            if deleted is not key:
                await uow.keys.save(deleted)
                assert deleted.deleted_at is not None
                purge_time = format_time(deleted.deleted_at + self._retention)
                await self._audit(uow, actor, deleted, "apiKey.delete", {"purge_time": purge_time})
                await uow.commit()
        if deleted is not key:
            self._after_commit()
        await self._publish(deleted, KeyEvent.DELETED)
        return self._view(deleted)

    async def undelete(self, actor: Actor, ws_id: str, key_id: str) -> KeyView:
        await self._require_live(ws_id)
        async with self._uow() as uow:
            key = await self._visible(uow, actor, ws_id, key_id, lock=True)
            now = self._clock.now()
            if key.purge_due(now, self._retention):
                # the window has ended; the purge job just has not reached the key yet
                raise FailedPrecondition(
                    "the key's retention window has ended", reason="KEY_PURGED"
                )
            restored = key.undelete(now=now)
            await uow.keys.save(restored)
            await self._audit(uow, actor, restored, "apiKey.undelete")
            await uow.commit()
        self._after_commit()
        await self._publish(restored, KeyEvent.UNDELETED)
        return self._view(restored)

    def list_scopes(self) -> tuple[ScopeRule, ...]:
        return self._policy.rules

    async def verify(
        self,
        key_text: str,
        client_ip: str,
        origin: str,
        required_scope: str,
        *,
        introspect: bool = False,
    ) -> Verified:
        """The hot path; see the module docstring of ``domain.api_key`` for the order.

        ``introspect`` (the edge's whoami) checks everything but an RPC scope; it must come
        with an empty ``required_scope`` so that an ordinary call can never skip the scope.
        """
        scope: Scope | None = None
        if introspect:
            if required_scope:
                raise InvalidArgument.field(
                    "required_scope",
                    "must be empty with introspect",
                    reason="REQUIRED_SCOPE_INVALID",
                )
        else:
            try:
                scope = Scope.parse(required_scope)
            except ValueError as exc:
                raise InvalidArgument.field(
                    "required_scope", str(exc), reason="REQUIRED_SCOPE_INVALID"
                ) from None
        presented = parse_key(key_text)  # offline: junk never reaches the database
        digests = [h.digest for h in self._ring.lookup_hashes(presented)]
        async with self._read_uow() as uow:
            found = await uow.keys.find_by_digests(digests)
        now = self._clock.now()
        try:
            verified = authenticate(presented, found, self._ring, now=now)
            key = verified.key
            status = await self._workspaces.status(key.workspace_id)
            context = VerifyContext(
                now=now,
                workspace_active=status is WorkspaceStatus.ACTIVE,
                client_ip=client_ip or None,
                origin=origin or None,
                required_scope=scope,
            )
            authorize(key, context)
        except RailguardError as exc:
            if found is not None:
                await self._audit_denial(found, exc.reason, client_ip, scope, now)
            raise
        if verified.needs_rehash and key.secret_hash is not None:
            async with self._uow() as uow:
                await uow.keys.rehash(key.id, key.secret_hash, self._ring.hash(presented))
                await uow.commit()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            self._usage.record(key.id, now)
        return verified

    async def _audit_denial(
        self, key: ApiKey, reason: str, client_ip: str, scope: Scope | None, now: datetime
    ) -> None:
        """Record a refusal of a known key, throttled; never fails or slows the refusal itself."""
        if key.purged:
            return
        if reason == DenyReason.KEY_NOT_FOUND and key.deleted_at is not None:
            reason = "KEY_DELETED"  # a deleted key still presented: worth knowing
        elif reason not in _AUDITED_DENIALS:
            return
        if not self._denials.allow(key.id, reason, now):
            return
        origin = self._origin()
        metadata = {"reason": reason}
        if scope is not None:
            metadata["required_scope"] = str(scope)
        try:
            event = AuditEvent.new(
                workspace_id=key.workspace_id,
                actor=f"apiKey:{key.id}",
                action="apiKey.verify",
                target=_key_name(key),
                time=now,
                outcome=Outcome.DENIED,
                request_id=origin.request_id,
                client_ip=client_ip[:64],
                metadata=metadata,
            )
            async with self._uow() as uow:
                await uow.outbox.record(event)
                await uow.commit()
        except Exception:  # noqa: BLE001 - the refusal stands whether or not it is recorded
            _log.warning("could not record a refused verification", exc_info=True)
            return
        self._after_commit()


class KeysRetention:
    """The purge job: destroys the digests of keys deleted longer than ``retention`` ago."""

    def __init__(
        self,
        uow: Callable[[], KeysUnitOfWork],
        clock: Clock,
        retention: timedelta = DEFAULT_RETENTION,
        *,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        if retention < timedelta(0):
            raise ValueError("the retention window cannot be negative")
        self._uow, self._clock, self._retention = uow, clock, retention
        self._after_commit = after_commit

    async def purge_expired(self, batch: int = 100) -> builtins.list[str]:
        """Purge every deleted key whose window has ended; the ids purged.

        Each key is purged in its own transaction, re-checked under its row lock, so a restore
        racing the job either wins (the key is live again) or loses (it is refused).
        """
        now = self._clock.now()
        purged: builtins.list[str] = []
        after = ""
        while True:
            async with self._uow() as uow:
                candidates = await uow.keys.deleted_unpurged(now - self._retention, after, batch)
            if not candidates:
                break
            after = candidates[-1].id
            for candidate in candidates:
                if await self._purge_one(candidate.workspace_id, candidate.id, now):
                    purged.append(candidate.id)
        if purged:
            self._after_commit()
        return purged

    async def _purge_one(self, ws_id: str, key_id: str, now: datetime) -> bool:
        async with self._uow() as uow:
            key = await uow.keys.get(ws_id, key_id, lock=True)
            if key is None or not key.purge_due(now, self._retention):
                return False
            assert key.deleted_at is not None
            tombstone = key.purge(now=now)
            await uow.keys.save(tombstone)
            await uow.outbox.record(
                AuditEvent.new(
                    workspace_id=ws_id,
                    actor="system",
                    action="apiKey.purge",
                    target=_key_name(key),
                    time=now,
                    metadata={"delete_time": format_time(key.deleted_at)},
                )
            )
            await uow.commit()
        return True


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


# ---- allowed origins (the edge's CORS preflight) -------------------------------------------------


class OriginLists(Protocol):
    async def active_origin_lists(self, now: datetime) -> builtins.list[builtins.list[str]]: ...


class OriginsUnitOfWork(ReadOnlyUnitOfWork, Protocol):
    @property
    def keys(self) -> OriginLists: ...


class AllowedOrigins:
    """The union of the allowed origins of every active key, with a version (a digest of it)."""

    def __init__(self, uow: Callable[[], OriginsUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def current(self) -> tuple[str, tuple[str, ...]]:
        async with self._uow() as uow:
            lists = await uow.keys.active_origin_lists(self._clock.now())
        origins = tuple(sorted({origin for listed in lists for origin in listed}))
        version = hashlib.sha256("\n".join(origins).encode()).hexdigest()[:32]
        return version, origins
