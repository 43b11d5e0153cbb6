"""The collaborators and steps every workspaces capability shares (the base of each capability class)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from servicekit.audit import AuditOrigin
from servicekit.clock import Clock
from servicekit.errors import NotFound
from servicekit.lifecycle import LifecycleEvent, LifecycleState

from workspaces_service.domain import Member, Workspace
from workspaces_service.ports import UnitOfWork, UserDirectory
from workspaces_service.usecases.common import UserEvents, _no_origin, _not_found

__all__ = ["WorkspacesCore"]


class WorkspacesCore:
    """The collaborators of the workspaces use cases, and the steps they share."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Clock,
        directory: UserDirectory,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        *,
        origin: Callable[[], AuditOrigin] = _no_origin,
        after_commit: Callable[[], None] = lambda: None,
        stream_poll: float = 0.5,
        stream_recheck: float = 5.0,
        read_uow: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        """``origin`` tells who acts and from where (request id, client IP) for audit events;
        ``after_commit`` is called once an audited change has committed (it wakes the relay).
        Audit streams poll the log every ``stream_poll`` seconds at most (an append in this
        process wakes them at once) and re-read the reader's role at least every
        ``stream_recheck`` seconds, and always before sending new events. ``read_uow`` (default
        ``uow``) opens the read-only units of work of the hot reads (GetWorkspace, ResolveAccess):
        one statement each, no transaction around it."""
        self._uow, self._clock, self._directory, self._new_id = uow, clock, directory, new_id
        self._read_uow = read_uow or uow
        self._after_commit = after_commit
        self._audit = UserEvents(origin, clock)
        self._stream_poll, self._stream_recheck = stream_poll, stream_recheck
        # replaced on every append: a stream holds the one current when it last read the log
        self._appended = asyncio.Event()

    async def _lifecycle(self, uow: UnitOfWork, ws: Workspace, state: LifecycleState) -> None:
        """Tell the other services, through their outboxes, in this change's transaction."""
        await uow.lifecycle.record(
            LifecycleEvent.new(ws.id, state, ws.lifecycle_version, ws.updated_at)
        )

    async def _actor(self, uow: UnitOfWork, ws_id: str, actor_id: str) -> Member:
        member = await uow.members.get(ws_id, actor_id)
        if member is None:
            raise _not_found()  # not a member ≡ no such workspace
        return member

    async def _live(self, uow: UnitOfWork, ws_id: str, *, lock: bool = False) -> Workspace:
        ws = await uow.workspaces.get(ws_id, lock=lock)
        if ws is None:
            raise _not_found()
        if ws.deleted:
            # the edge's answer for the same state (docs/architecture.md, "Deleted workspaces"),
            # so a request decided here (an edge's view up to a second old) reads the same
            raise NotFound("the workspace is deleted", reason="WORKSPACE_DELETED")
        return ws
