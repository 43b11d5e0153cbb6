"""Retention: purging deleted workspaces past their window, re-sending lifecycle events."""

from __future__ import annotations

import builtins
import datetime as dt

from servicekit.audit import AuditEvent, format_time
from servicekit.lifecycle import LifecycleEvent, LifecycleState

from workspaces_service.usecases.common import _lifecycle_state
from workspaces_service.usecases.core import WorkspacesCore

__all__ = ["WorkspacesRetention"]


class WorkspacesRetention(WorkspacesCore):
    """The jobs: purge and lifecycle re-send."""

    async def purge_expired(self, now: dt.datetime, batch: int = 100) -> builtins.list[str]:
        """Purge every deleted workspace whose window ended by ``now``; the ids purged.

        Members are hard-deleted; the workspace row stays as a tombstone (id, name, creator,
        delete and purge times) so references to it stay valid, and its audit log is kept.
        Each workspace is purged in its own transaction, re-checked under its row lock so a
        concurrent restore wins or loses cleanly.
        """
        purged: builtins.list[str] = []
        after = ""
        while True:
            async with self._uow() as uow:
                candidates = await uow.workspaces.deleted_unpurged(after, batch)
            if not candidates:
                break
            after = candidates[-1].id
            for candidate in candidates:
                if candidate.purge_due(now) and await self._purge_one(candidate.id, now):
                    purged.append(candidate.id)
        if purged:
            self._after_commit()
        return purged

    async def _purge_one(self, ws_id: str, now: dt.datetime) -> bool:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            if ws is None or ws.purged or not ws.purge_due(now) or ws.deleted_at is None:
                return False
            removed = await uow.members.remove_all(ws_id)
            ws.purge(now)
            await uow.workspaces.save(ws)
            await self._lifecycle(uow, ws, LifecycleState.PURGED)
            await uow.outbox.record(
                AuditEvent.new(
                    workspace_id=ws_id,
                    actor="system",
                    action="workspace.purge",
                    target=f"workspaces/{ws_id}",
                    time=now,
                    metadata={
                        "members_removed": str(removed),
                        "delete_time": format_time(ws.deleted_at),
                    },
                )
            )
            await uow.commit()
        return True

    async def resend_lifecycle(self, batch: int = 100) -> int:
        """Queue the current state of every workspace ever deleted, again; how many.

        For a receiver that missed events (its database restored from an old backup, say):
        receivers apply by version, so one that is current skips them and one that is behind
        catches up. Nothing else changes.
        """
        sent, after = 0, ""
        while True:
            async with self._uow() as uow:
                page = await uow.workspaces.with_lifecycle(after, batch)
                if not page:
                    break
                for ws in page:
                    await uow.lifecycle.record(
                        LifecycleEvent.new(
                            ws.id, _lifecycle_state(ws), ws.lifecycle_version, self._clock.now()
                        )
                    )
                await uow.commit()
            sent += len(page)
            after = page[-1].id
        if sent:
            self._after_commit()
        return sent

    # --- audit log ------------------------------------------------------------------------
