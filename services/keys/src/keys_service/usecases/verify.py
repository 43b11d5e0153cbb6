"""Verifying a presented key: the hot path, and the audit of refusals of known keys."""

from __future__ import annotations

import logging
from datetime import datetime

from servicekit.audit import AuditEvent, Outcome
from servicekit.errors import InvalidArgument, RailguardError

from keys_service.domain import (
    ApiKey,
    DenyReason,
    Scope,
    Verified,
    VerifyContext,
    authenticate,
    authorize,
    parse_key,
)
from keys_service.ports import WorkspaceStatus
from keys_service.usecases.common import LAST_USED_RESOLUTION, _key_name
from keys_service.usecases.core import KeysCore
from keys_service.usecases.denials import AUDITED_DENIALS

__all__ = ["KeyVerification"]

_log = logging.getLogger("keys_service")


class KeyVerification(KeysCore):
    """Verify, with throttled audit of refusals."""

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
        digests = tuple(h.digest for h in self._ring.lookup_hashes(presented))

        async def read() -> ApiKey | None:
            async with self._read_uow() as uow:
                return await uow.keys.find_by_digests(digests)

        found = await self._stored.find(digests, read)
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
            self._stored.drop(key.id)  # the other replicas drop it when the feed tells them
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            self._usage.record(key.id, now)
            self._stored.used(digests, now)
        return verified

    async def _audit_denial(
        self, key: ApiKey, reason: str, client_ip: str, scope: Scope | None, now: datetime
    ) -> None:
        """Record a refusal of a known key, throttled; never fails or slows the refusal itself."""
        if key.purged:
            return
        if reason == DenyReason.KEY_NOT_FOUND and key.deleted_at is not None:
            reason = "KEY_DELETED"  # a deleted key still presented: worth knowing
        elif reason not in AUDITED_DENIALS:
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
