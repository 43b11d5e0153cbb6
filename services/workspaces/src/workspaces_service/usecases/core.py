"""The collaborators and steps every workspaces capability shares (the base of each capability class)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from servicekit.errors import NotFound
from servicekit.lifecycle import LifecycleEvent, LifecycleState
from servicekit.usecase import Collaborators, UserEvents

from workspaces_service.domain import Member, Workspace
from workspaces_service.ports import UnitOfWork, UserDirectory
from workspaces_service.usecases.common import _not_found

__all__ = ["WorkspacesCore", "WorkspacesDeps"]


@dataclass(frozen=True, slots=True)
class WorkspacesDeps:
    """The collaborators of the workspaces use cases: the ones every service's have
    (``shared``), and what workspaces adds.

    ``directory`` answers who a user is (the auth service). Audit streams poll the log every
    ``stream_poll`` seconds at most (an append in this process wakes them at once) and re-read
    the reader's role at least every ``stream_recheck`` seconds, and always before sending new
    events. The hot reads (GetWorkspace, ResolveAccess) use ``shared.reader``.
    """

    shared: Collaborators[UnitOfWork]
    directory: UserDirectory
    stream_poll: float = 0.5
    stream_recheck: float = 5.0


class WorkspacesCore:
    """The collaborators of the workspaces use cases, and the steps they share."""

    def __init__(self, deps: WorkspacesDeps) -> None:
        shared = deps.shared
        self._uow, self._clock, self._read_uow = shared.uow, shared.clock, shared.reader
        self._new_id, self._after_commit = shared.new_id, shared.after_commit
        self._audit = UserEvents(shared.origin, shared.clock)
        self._directory = deps.directory
        self._stream_poll, self._stream_recheck = deps.stream_poll, deps.stream_recheck
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
