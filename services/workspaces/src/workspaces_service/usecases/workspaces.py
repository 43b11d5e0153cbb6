"""Workspaces themselves: create, get, list, update, delete and undelete."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from servicekit.audit import format_time
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.pagination import fetch_page

from workspaces_service.domain import (
    Member,
    Plan,
    Role,
    Workspace,
    validate_display_name,
    validate_retention,
)
from workspaces_service.ports import UnitOfWork
from workspaces_service.usecases.common import (
    _ID,
    UPDATABLE_FIELDS,
    _lifecycle_state,
    _not_found,
)
from workspaces_service.usecases.core import WorkspacesCore

__all__ = ["WorkspaceManagement"]


@dataclass(frozen=True, slots=True)
class _LifeChange:
    """Delete or undelete: the domain step, its audit action, the refusal to anyone but the Owner."""

    step: Callable[[Workspace, dt.datetime], None]
    action: str
    refusal: str


_DELETE: Final = _LifeChange(
    Workspace.delete, "workspace.delete", "only an Owner deletes a workspace"
)
_UNDELETE: Final = _LifeChange(
    Workspace.undelete, "workspace.undelete", "only an Owner restores a workspace"
)


class WorkspaceManagement(WorkspacesCore):
    """A workspace's own life, each change audited and, for delete/undelete, told to the other services."""

    async def create(
        self,
        actor_id: str,
        display_name: str,
        mfa_required: bool,
        retention_days: int,
        request_id: str,
    ) -> tuple[Workspace, Role]:
        name = validate_display_name(display_name, "workspace.display_name")
        retention = validate_retention(retention_days, "workspace.retention_days")
        if request_id and not _ID.match(request_id):
            raise InvalidArgument.field(
                "request_id", "must be 1-64 of [A-Za-z0-9_-]", reason="INVALID_REQUEST_ID"
            )
        user = await self._directory.find_by_id(actor_id)
        async with self._uow() as uow:
            if request_id:
                existing = await uow.workspaces.by_request_id(actor_id, request_id)
                if existing is not None:
                    return existing, Role.OWNER
            now = self._clock.now()
            ws = Workspace(self._new_id(), name, Plan.FREE, mfa_required, retention, now, now)
            await uow.workspaces.add(ws, actor_id, request_id or None)
            await uow.members.add(
                Member(ws.id, actor_id, user.email if user else "", Role.OWNER, now)
            )
            await self._audit(
                uow,
                actor_id,
                ws.id,
                "workspace.create",
                f"workspaces/{ws.id}",
                {"retention_days": str(retention), "mfa_required": str(mfa_required).lower()},
            )
            await uow.commit()
        self._after_commit()
        return ws, Role.OWNER

    async def get(self, actor_id: str, ws_id: str) -> tuple[Workspace, Role]:
        async with self._read_uow() as uow:
            found = await uow.workspaces.get_with_role(ws_id, actor_id)
        if found is None:
            raise _not_found()  # not a member ≡ no such workspace
        return found

    async def list(
        self, actor_id: str, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[tuple[Workspace, Role]], str]:
        """The caller's workspaces by id; deleted ones (to their Owners only) on request."""

        async def read(after: str, limit: int) -> list[tuple[Workspace, Role]]:
            async with self._uow() as uow:
                return await uow.workspaces.list_for_user(
                    actor_id, after, limit, show_deleted=show_deleted
                )

        query = f"workspaces:{actor_id}:{show_deleted}"
        return await fetch_page(page_size, page_token, query, read, lambda row: row[0].id)

    async def update(
        self, actor_id: str, ws_id: str, changes: Mapping[str, object]
    ) -> tuple[Workspace, Role]:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise InvalidArgument.field(
                "update_mask",
                f"cannot update {', '.join(sorted(unknown))}",
                reason="INVALID_UPDATE_MASK",
            )
        async with self._uow() as uow:
            ws = await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if actor.role < Role.ADMIN:
                raise PermissionDenied(
                    "your role does not allow this action", reason="ROLE_TOO_LOW"
                )
            if "plan" in changes:
                if actor.role is not Role.OWNER:
                    raise PermissionDenied(
                        "only an Owner changes the plan", reason="OWNER_REQUIRED"
                    )
                plan = int(changes["plan"])  # type: ignore[call-overload]
                if plan not in {p.value for p in Plan}:
                    raise InvalidArgument.field(
                        "workspace.plan", "is not a plan", reason="INVALID_PLAN"
                    )
                ws.plan = Plan(plan)
            if "display_name" in changes:
                ws.display_name = validate_display_name(
                    str(changes["display_name"]), "workspace.display_name"
                )
            if "retention_days" in changes:
                days = int(changes["retention_days"])  # type: ignore[call-overload]
                if days == 0:
                    raise InvalidArgument.field(
                        "workspace.retention_days", "must be 1 to 365", reason="INVALID_RETENTION"
                    )
                ws.retention_days = validate_retention(days, "workspace.retention_days")
            if "mfa_required" in changes:
                ws.mfa_required = bool(changes["mfa_required"])
            if "verified_email_required" in changes:
                ws.verified_email_required = bool(changes["verified_email_required"])
            ws.updated_at = self._clock.now()
            await uow.workspaces.save(ws)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "workspace.update",
                f"workspaces/{ws_id}",
                {"fields": ",".join(sorted(changes))},
            )
            await uow.commit()
        self._after_commit()
        return ws, actor.role

    async def delete(self, actor_id: str, ws_id: str) -> Workspace:
        return await self._change_life(_DELETE, actor_id, ws_id)

    async def undelete(self, actor_id: str, ws_id: str) -> Workspace:
        return await self._change_life(_UNDELETE, actor_id, ws_id)

    async def _change_life(self, change: _LifeChange, actor_id: str, ws_id: str) -> Workspace:
        """Delete or restore as the workspace's Owner, in one transaction: saved, told to the
        other services, audited (a delete with the time its purge becomes due)."""
        async with self._uow() as uow:
            ws = await self._owned(uow, ws_id, actor_id, change.refusal)
            change.step(ws, self._clock.now())
            await uow.workspaces.save(ws)
            await self._lifecycle(uow, ws, _lifecycle_state(ws))
            purge_at = ws.purge_at
            metadata = None if purge_at is None else {"purge_time": format_time(purge_at)}
            await self._audit(uow, actor_id, ws_id, change.action, f"workspaces/{ws_id}", metadata)
            await uow.commit()
        self._after_commit()
        return ws

    async def _owned(self, uow: UnitOfWork, ws_id: str, actor_id: str, refusal: str) -> Workspace:
        """The workspace, locked, if ``actor_id`` is its Owner (deleted or not); else refused."""
        ws = await uow.workspaces.get(ws_id, lock=True)
        actor = await self._actor(uow, ws_id, actor_id)
        if ws is None:
            raise _not_found()
        if actor.role is not Role.OWNER:
            raise PermissionDenied(refusal, reason="OWNER_REQUIRED")
        return ws
