"""The purge job: a deleted key past its retention window loses its digests (a tombstone stays)."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from servicekit.audit import AuditEvent, format_time
from servicekit.usecase import Collaborators

from keys_service.ports import KeysUnitOfWork
from keys_service.usecases.common import DEFAULT_RETENTION, _key_name

__all__ = ["KeysRetention"]


class KeysRetention:
    """The purge job: destroys the digests of keys deleted longer than ``retention`` ago."""

    def __init__(
        self, deps: Collaborators[KeysUnitOfWork], retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        if retention < timedelta(0):
            raise ValueError("the retention window cannot be negative")
        self._uow, self._clock, self._retention = deps.uow, deps.clock, retention
        self._after_commit = deps.after_commit

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
