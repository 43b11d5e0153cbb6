"""Issuing a key: validation, the scope ceiling, the grant rule, idempotent retries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from servicekit.audit import format_time
from servicekit.errors import InvalidArgument
from servicekit.metadata import joined

from keys_service.domain import (
    IpAllowlist,
    KeyEnvironment,
    OriginAllowlist,
    Rights,
    ensure_grant,
    issue_key,
    validate_name,
)
from keys_service.usecases.common import _ID, Actor, KeyView, _future
from keys_service.usecases.core import KeysCore

__all__ = ["KeyIssuing"]


class KeyIssuing(KeysCore):
    """Create: mint a key within the caller's rights."""

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
                "scopes": joined(scope_set.as_strings()),
                "created_by": actor.user_id,
            }
            if expires_at is not None:
                metadata["expire_time"] = format_time(expires_at)
            await self._audit(uow, actor, key, "apiKey.create", metadata)
            await uow.commit()
        self._after_commit()
        return self._view(key, secret.reveal())
