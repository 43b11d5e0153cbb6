"""The workspaces service as the keys service sees it: is a workspace alive, what is a user's role.

Both go through the internal ``WorkspacesService/ResolveAccess`` RPC (which names ``keys`` as an
allowed caller). :class:`CachedWorkspaceDirectory` keeps a workspace's status for at most one
second, so a deleted workspace stops every key within that second while the verify hot path makes
about one ResolveAccess call per workspace per second. Failures are not cached and surface as
UNAVAILABLE (fail closed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import grpc
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from servicekit.clients import call

from keys_service.domain import Role
from keys_service.usecases import WorkspaceDirectory, WorkspaceStatus

__all__ = ["MAX_STATUS_TTL", "CachedWorkspaceDirectory", "GrpcWorkspaceDirectory"]

MAX_STATUS_TTL: Final = 1.0
_MAX_ENTRIES: Final = 100_000


class GrpcWorkspaceDirectory:
    """A ``WorkspaceDirectory`` backed by the workspaces service."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float = 2.0) -> None:
        self._stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        self._timeout = timeout

    async def _resolve(
        self, user_id: str, workspace_id: str
    ) -> workspaces_service_pb2.ResolveAccessResponse:
        request = workspaces_service_pb2.ResolveAccessRequest(
            user_id=user_id, workspace_id=workspace_id
        )
        return await call(self._stub.ResolveAccess, request, timeout=self._timeout)

    async def status(self, workspace_id: str) -> WorkspaceStatus:
        view = await self._resolve("", workspace_id)
        if not view.workspace_exists:
            return WorkspaceStatus.MISSING
        if view.state == workspaces_service_pb2.WORKSPACE_STATE_DELETED:
            return WorkspaceStatus.DELETED
        return WorkspaceStatus.ACTIVE

    async def role_of(self, user_id: str, workspace_id: str) -> Role:
        view = await self._resolve(user_id, workspace_id)
        return Role(view.role) if view.member and view.workspace_exists else Role.NONE


class CachedWorkspaceDirectory:
    """Caches :meth:`status` for ``ttl`` seconds (capped at one); roles are never cached."""

    def __init__(
        self,
        inner: WorkspaceDirectory,
        ttl: float = MAX_STATUS_TTL,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner, self._timer = inner, timer
        self._ttl = max(0.0, min(ttl, MAX_STATUS_TTL))
        self._cache: dict[str, tuple[float, WorkspaceStatus]] = {}

    async def status(self, workspace_id: str) -> WorkspaceStatus:
        now = self._timer()
        hit = self._cache.get(workspace_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        status = await self._inner.status(workspace_id)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[workspace_id] = (now, status)
        return status

    async def role_of(self, user_id: str, workspace_id: str) -> Role:
        return await self._inner.role_of(user_id, workspace_id)
