"""The collaborators and checks every keys capability shares (the base of each capability class)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from servicekit.errors import FailedPrecondition, NotFound
from servicekit.throttle import AuditThrottle
from servicekit.usecase import Collaborators, UserEvents

from keys_service.domain import (
    ApiKey,
    KeyState,
    PepperRing,
    Rights,
    ScopePolicy,
    ScopeSet,
    ensure_within,
)
from keys_service.ports import (
    InvalidationPublisher,
    KeyEvent,
    KeysUnitOfWork,
    ReadEveryTime,
    StoredKeyCache,
    UsageRecorder,
    WorkspaceDirectory,
    WorkspaceStatus,
)
from keys_service.usecases.common import (
    DEFAULT_RETENTION,
    Actor,
    KeyView,
    _caller_key_invalid,
    _key_name,
    _key_rights,
    _not_found,
    _purged,
    _scope_set,
)

__all__ = ["KeysCore", "KeysDeps"]


@dataclass(frozen=True, slots=True)
class KeysDeps:
    """The collaborators of the keys use cases: the ones every service's have (``shared``), and
    what keys adds.

    ``ring`` hashes secrets (the current pepper and the retired ones still verifying);
    ``policy`` bounds scopes by role; ``workspaces`` answers a workspace's status (cached);
    ``publisher`` tells the edges to drop a changed key; ``usage`` buffers last-used times;
    ``retention`` is how long a deleted key can be restored; ``denials`` throttles the audit
    events of refused verifications (one per key and reason per minute by default); ``stored``
    keeps VerifyApiKey's reads of stored keys while the keys change feed reaches it (none by
    default: every verification reads the database).
    """

    shared: Collaborators[KeysUnitOfWork]
    ring: PepperRing
    policy: ScopePolicy
    workspaces: WorkspaceDirectory
    publisher: InvalidationPublisher
    usage: UsageRecorder
    retention: timedelta = DEFAULT_RETENTION
    denials: AuditThrottle | None = None
    stored: StoredKeyCache = field(default_factory=ReadEveryTime)


class KeysCore:
    """The collaborators of the keys use cases, and the checks and steps they share."""

    def __init__(self, deps: KeysDeps) -> None:
        shared = deps.shared
        self._uow, self._clock, self._read_uow = shared.uow, shared.clock, shared.reader
        self._new_id, self._origin, self._after_commit = (
            shared.new_id,
            shared.origin,
            shared.after_commit,
        )
        self._events = UserEvents(shared.origin, shared.clock)
        self._ring, self._policy, self._workspaces = deps.ring, deps.policy, deps.workspaces
        self._publisher, self._usage, self._retention = deps.publisher, deps.usage, deps.retention
        self._denials = deps.denials or AuditThrottle()
        self._stored = deps.stored

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
        await self._events(uow, actor.user_id, key.workspace_id, action, _key_name(key), metadata)

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
        """After the commit of a change of ``key``: this replica stops answering from what it
        kept at once (the change feed tells the other replicas and the edges), then Redis."""
        self._stored.drop(key.id)
        await self._publisher.key_changed(key, event)
