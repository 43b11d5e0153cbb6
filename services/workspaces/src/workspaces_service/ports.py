"""The ports of the workspaces use cases: Protocol classes the adapters implement.

Nothing here imports an adapter; ``__main__`` hands the concretes in
(``adapters.repository``, ``adapters.directory``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from servicekit import ports
from servicekit.lifecycle import LifecycleEvent

from workspaces_service.domain import Member, Role, Workspace
from workspaces_service.domain.audit_log import AuditEntry, ChainHead

__all__ = [
    "AuditLogRepo",
    "DirectoryUserLike",
    "LifecycleOutbox",
    "MemberRepo",
    "UnitOfWork",
    "UserDirectory",
    "WorkspaceRepo",
]


class WorkspaceRepo(Protocol):
    async def get(self, workspace_id: str, *, lock: bool = False) -> Workspace | None: ...
    async def get_with_role(
        self, workspace_id: str, user_id: str
    ) -> tuple[Workspace, Role] | None: ...
    async def get_with_optional_role(
        self, workspace_id: str, user_id: str
    ) -> tuple[Workspace, Role | None] | None: ...
    async def by_request_id(self, user_id: str, request_id: str) -> Workspace | None: ...
    async def add(self, ws: Workspace, created_by: str, request_id: str | None) -> None: ...
    async def save(self, ws: Workspace) -> None: ...
    async def list_for_user(
        self, user_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[tuple[Workspace, Role]]:
        """The user's workspaces by id after ``after`` with the user's role, at most ``limit``; a
        deleted one only with ``show_deleted`` and only where the user is its Owner."""

    async def deleted_unpurged(self, after: str, limit: int) -> list[Workspace]: ...
    async def with_lifecycle(self, after: str, limit: int) -> list[Workspace]: ...


class MemberRepo(Protocol):
    async def get(self, workspace_id: str, user_id: str) -> Member | None: ...
    async def add(self, member: Member) -> None: ...
    async def set_role(self, workspace_id: str, user_id: str, role: Role) -> None: ...
    async def remove(self, workspace_id: str, user_id: str) -> None: ...
    async def remove_all(self, workspace_id: str) -> int: ...
    async def count_owners(self, workspace_id: str) -> int: ...
    async def list(self, workspace_id: str, after: str, limit: int) -> list[Member]: ...


class AuditLogRepo(Protocol):
    async def lock_head(self, workspace_id: str) -> ChainHead: ...
    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]: ...
    async def append(self, entries: Sequence[AuditEntry], received_at: dt.datetime) -> None: ...
    async def newest_first(
        self, workspace_id: str, before: int, limit: int
    ) -> list[AuditEntry]: ...
    async def in_order(self, workspace_id: str, after: int, limit: int) -> list[AuditEntry]: ...


class LifecycleOutbox(Protocol):
    """Queues a lifecycle event for every service that holds workspace data."""

    async def record(self, event: LifecycleEvent) -> None: ...


class UnitOfWork(ports.AuditedUnitOfWork, Protocol):
    """The workspaces use cases' transaction (``adapters.repository.WorkspacesUnitOfWork``), with
    its audit outbox (``servicekit.ports.AuditedUnitOfWork``)."""

    @property
    def workspaces(self) -> WorkspaceRepo: ...
    @property
    def members(self) -> MemberRepo: ...
    @property
    def audit_log(self) -> AuditLogRepo: ...
    @property
    def lifecycle(self) -> LifecycleOutbox: ...


class DirectoryUserLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def email(self) -> str: ...


class UserDirectory(Protocol):
    async def find_by_email(self, email: str) -> DirectoryUserLike | None: ...
    async def find_by_id(self, user_id: str) -> DirectoryUserLike | None: ...
