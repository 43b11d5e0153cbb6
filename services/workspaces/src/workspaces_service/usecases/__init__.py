"""Use cases of the workspaces service: fetch → check → act → commit, primitives in and out.

The actor's role is always read from this service's own tables inside the transaction, so a
role change or removal takes effect on the very next request. Every successful mutation records
exactly one audit event in this service's outbox in the same transaction; the relay appends it
to the workspace's hash chain (see docs/audit.md).

**The package.** One class per capability, each a :class:`WorkspacesCore` (the shared
collaborators and steps, ``core.py``) with only its own use cases; :class:`WorkspacesService` is
all of them on one set of collaborators, which is what the servicer and the composition root hold:

- :class:`WorkspaceManagement` (``workspaces.py``): create, get, list, update, delete, undelete;
- :class:`Memberships` (``members.py``): members and ownership transfer;
- :class:`AccessResolution` (``access.py``): what the edge needs to authorise a request;
- :class:`WorkspacesRetention` (``retention.py``): the purge job and lifecycle re-send;
- :class:`AuditLog` (``audit_log.py``): append, list, stream and verify the hash chain.

The ports they depend on are in :mod:`workspaces_service.ports` (re-exported here).
"""

from __future__ import annotations

from workspaces_service.ports import (
    AuditLogRepo,
    DirectoryUserLike,
    LifecycleOutbox,
    MemberRepo,
    UnitOfWork,
    UserDirectory,
    WorkspaceRepo,
)
from workspaces_service.usecases.access import AccessResolution
from workspaces_service.usecases.audit_log import AuditLog
from workspaces_service.usecases.common import (
    MAX_APPEND_BATCH,
    UPDATABLE_FIELDS,
    AccessView,
    ChainReport,
    parse_id,
)
from workspaces_service.usecases.core import WorkspacesCore, WorkspacesDeps
from workspaces_service.usecases.members import Memberships
from workspaces_service.usecases.retention import WorkspacesRetention
from workspaces_service.usecases.workspaces import WorkspaceManagement

__all__ = [
    "MAX_APPEND_BATCH",
    "UPDATABLE_FIELDS",
    "AccessResolution",
    "AccessView",
    "AuditLog",
    "AuditLogRepo",
    "ChainReport",
    "DirectoryUserLike",
    "LifecycleOutbox",
    "MemberRepo",
    "Memberships",
    "UnitOfWork",
    "UserDirectory",
    "WorkspaceManagement",
    "WorkspaceRepo",
    "WorkspacesCore",
    "WorkspacesDeps",
    "WorkspacesRetention",
    "WorkspacesService",
    "parse_id",
]


class WorkspacesService(
    WorkspaceManagement, Memberships, AccessResolution, WorkspacesRetention, AuditLog
):
    """Every use case of the workspaces service on one set of collaborators."""
