"""Updating a key's name, scopes, allowlists or expiry under the grant rule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from servicekit.audit import format_time
from servicekit.errors import InvalidArgument
from servicekit.metadata import joined

from keys_service.domain import IpAllowlist, OriginAllowlist, ScopeSet, ensure_grant, validate_name
from keys_service.ports import KeyEvent
from keys_service.usecases.common import (
    _UPDATE_FACETS,
    UPDATABLE_FIELDS,
    Actor,
    KeyView,
    _future,
    _key_rights,
    _replace,
    _require_active,
    _strings,
)
from keys_service.usecases.core import KeysCore

__all__ = ["KeyUpdates"]


class KeyUpdates(KeysCore):
    """Update: the fields of the mask, each checked."""

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
                metadata["scopes"] = joined(key.scopes.as_strings())
            if "expires_at" in fields:
                metadata["expire_time"] = format_time(key.expires_at) if key.expires_at else ""
            await self._audit(uow, actor, key, "apiKey.update", metadata)
            await uow.commit()
        self._after_commit()
        await self._publish(key, KeyEvent.UPDATED)
        return self._view(key)
