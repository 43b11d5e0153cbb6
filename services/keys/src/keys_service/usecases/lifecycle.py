"""A key's life after issue: revoke, rotate, delete and undelete (each audited and published)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

from servicekit.audit import format_time
from servicekit.errors import FailedPrecondition

from keys_service.domain import ApiKey, ensure_grant
from keys_service.ports import KeyEvent
from keys_service.usecases.common import Actor, KeyView, _key_rights
from keys_service.usecases.core import KeysCore

__all__ = ["KeyLifecycle"]


class KeyLifecycle(KeysCore):
    """Revoke, rotate, delete, undelete."""

    async def revoke(self, actor: Actor, ws_id: str, key_id: str) -> KeyView:
        return await self._transition(
            actor, ws_id, key_id, ApiKey.revoke, "apiKey.revoke", KeyEvent.REVOKED
        )

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
        return await self._transition(
            actor,
            ws_id,
            key_id,
            ApiKey.delete,
            "apiKey.delete",
            KeyEvent.DELETED,
            metadata=self._purge_time,
        )

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

    async def _transition(
        self,
        actor: Actor,
        ws_id: str,
        key_id: str,
        change: Callable[..., ApiKey],
        action: str,
        event: KeyEvent,
        metadata: Callable[[ApiKey], Mapping[str, str]] | None = None,
    ) -> KeyView:
        """Apply ``change`` (revoke or delete) to a visible key; a no-op records nothing.

        The change is published either way, so a retry still refreshes a stale verifier.
        """
        await self._require_live(ws_id)
        async with self._uow() as uow:
            key = await self._visible(uow, actor, ws_id, key_id, lock=True)
            changed: ApiKey = change(key, now=self._clock.now())
            if changed is not key:
                await uow.keys.save(changed)
                await self._audit(uow, actor, changed, action, metadata and metadata(changed))
                await uow.commit()
        if changed is not key:
            self._after_commit()
        await self._publish(changed, event)
        return self._view(changed)

    def _purge_time(self, deleted: ApiKey) -> Mapping[str, str]:
        """A deletion's audit metadata: when the key will be purged."""
        assert deleted.deleted_at is not None
        return {"purge_time": format_time(deleted.deleted_at + self._retention)}
