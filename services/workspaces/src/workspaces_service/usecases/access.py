"""Access resolution: what the edge needs to authorise a request in a workspace."""

from __future__ import annotations

from workspaces_service.usecases.common import _ID, AccessView
from workspaces_service.usecases.core import WorkspacesCore

__all__ = ["AccessResolution"]


class AccessResolution(WorkspacesCore):
    """ResolveAccess, on the read-only unit of work."""

    async def resolve_access(self, user_id: str, ws_id: str) -> AccessView:
        if not _ID.match(ws_id):
            return AccessView(False, False, 0, False, False, 0)
        async with self._read_uow() as uow:
            found = await uow.workspaces.get_with_optional_role(ws_id, user_id)
        if found is None or found[0].purged:
            return AccessView(False, False, 0, False, False, 0)
        ws, role = found
        return AccessView(
            workspace_exists=True,
            member=role is not None,
            role=int(role) if role is not None else 0,
            deleted=ws.deleted,
            mfa_required=ws.mfa_required,
            plan=int(ws.plan),
            verified_email_required=ws.verified_email_required,
        )

    # --- retention ------------------------------------------------------------------------
