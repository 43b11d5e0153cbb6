"""Use cases of the workspaces service: fetch → check → act → commit, primitives in and out.

The actor's role is always read from this service's own tables inside the transaction, so a
role change or removal takes effect on the very next request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from servicekit.clock import Clock
from servicekit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from servicekit.pagination import encode_token, page_request

from workspaces_service.adapters.repository import WorkspacesUnitOfWork
from workspaces_service.domain import (
    Member,
    Plan,
    Role,
    Workspace,
    check_can_assign,
    check_can_remove,
    validate_display_name,
    validate_retention,
)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
UPDATABLE_FIELDS = frozenset({"display_name", "plan", "mfa_required", "retention_days"})


class DirectoryUserLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def email(self) -> str: ...


class UserDirectory(Protocol):
    async def find_by_email(self, email: str) -> DirectoryUserLike | None: ...
    async def find_by_id(self, user_id: str) -> DirectoryUserLike | None: ...


@dataclass(frozen=True, slots=True)
class AccessView:
    """What the edge needs to authorise a request in a workspace."""

    workspace_exists: bool
    member: bool
    role: int
    deleted: bool
    mfa_required: bool
    plan: int


def parse_id(value: str, field: str) -> str:
    if not _ID.match(value):
        raise InvalidArgument.field(field, "is not a valid id", reason="INVALID_NAME")
    return value


def _not_found() -> NotFound:
    return NotFound("workspace not found", reason="WORKSPACE_NOT_FOUND")


class WorkspacesService:
    def __init__(
        self,
        uow: Callable[[], WorkspacesUnitOfWork],
        clock: Clock,
        directory: UserDirectory,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._uow, self._clock, self._directory, self._new_id = uow, clock, directory, new_id

    async def _actor(self, uow: WorkspacesUnitOfWork, ws_id: str, actor_id: str) -> Member:
        member = await uow.members.get(ws_id, actor_id)
        if member is None:
            raise _not_found()  # not a member ≡ no such workspace
        return member

    async def _live(self, uow: WorkspacesUnitOfWork, ws_id: str, *, lock: bool = False) -> Workspace:
        ws = await uow.workspaces.get(ws_id, lock=lock)
        if ws is None:
            raise _not_found()
        if ws.deleted:
            raise FailedPrecondition("workspace is deleted", reason="WORKSPACE_DELETED")
        return ws

    async def create(
        self, actor_id: str, display_name: str, mfa_required: bool, retention_days: int, request_id: str
    ) -> tuple[Workspace, Role]:
        name = validate_display_name(display_name, "workspace.display_name")
        retention = validate_retention(retention_days, "workspace.retention_days")
        if request_id and not _ID.match(request_id):
            raise InvalidArgument.field("request_id", "must be 1-64 of [A-Za-z0-9_-]", reason="INVALID_REQUEST_ID")
        user = await self._directory.find_by_id(actor_id)
        async with self._uow() as uow:
            if request_id:
                existing = await uow.workspaces.by_request_id(actor_id, request_id)
                if existing is not None:
                    return existing, Role.OWNER
            now = self._clock.now()
            ws = Workspace(self._new_id(), name, Plan.FREE, mfa_required, retention, now, now)
            await uow.workspaces.add(ws, actor_id, request_id or None)
            await uow.members.add(Member(ws.id, actor_id, user.email if user else "", Role.OWNER, now))
            await uow.commit()
        return ws, Role.OWNER

    async def get(self, actor_id: str, ws_id: str) -> tuple[Workspace, Role]:
        async with self._uow() as uow:
            actor = await self._actor(uow, ws_id, actor_id)
            ws = await uow.workspaces.get(ws_id)
            if ws is None:
                raise _not_found()
            return ws, actor.role

    async def list(
        self, actor_id: str, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[tuple[Workspace, Role]], str]:
        query = f"workspaces:{actor_id}:{show_deleted}"
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            rows = await uow.workspaces.list_for_user(actor_id, page.cursor, page.size + 1, show_deleted=show_deleted)
        # deleted workspaces are listed only to their Owners
        rows = [(ws, role) for ws, role in rows if not ws.deleted or role is Role.OWNER]
        more = len(rows) > page.size
        rows = rows[: page.size]
        return rows, encode_token(rows[-1][0].id, query) if more and rows else ""

    async def update(self, actor_id: str, ws_id: str, changes: Mapping[str, object]) -> tuple[Workspace, Role]:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise InvalidArgument.field(
                "update_mask", f"cannot update {', '.join(sorted(unknown))}", reason="INVALID_UPDATE_MASK"
            )
        async with self._uow() as uow:
            ws = await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if actor.role < Role.ADMIN:
                raise PermissionDenied("your role does not allow this action", reason="ROLE_TOO_LOW")
            if "plan" in changes:
                if actor.role is not Role.OWNER:
                    raise PermissionDenied("only an Owner changes the plan", reason="OWNER_REQUIRED")
                plan = int(changes["plan"])  # type: ignore[call-overload]
                if plan not in {p.value for p in Plan}:
                    raise InvalidArgument.field("workspace.plan", "is not a plan", reason="INVALID_PLAN")
                ws.plan = Plan(plan)
            if "display_name" in changes:
                ws.display_name = validate_display_name(str(changes["display_name"]), "workspace.display_name")
            if "retention_days" in changes:
                days = int(changes["retention_days"])  # type: ignore[call-overload]
                if days == 0:
                    raise InvalidArgument.field("workspace.retention_days", "must be 1 to 365", reason="INVALID_RETENTION")
                ws.retention_days = validate_retention(days, "workspace.retention_days")
            if "mfa_required" in changes:
                ws.mfa_required = bool(changes["mfa_required"])
            ws.updated_at = self._clock.now()
            await uow.workspaces.save(ws)
            await uow.commit()
            return ws, actor.role

    async def delete(self, actor_id: str, ws_id: str) -> Workspace:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if ws is None:
                raise _not_found()
            if actor.role is not Role.OWNER:
                raise PermissionDenied("only an Owner deletes a workspace", reason="OWNER_REQUIRED")
            ws.delete(self._clock.now())
            await uow.workspaces.save(ws)
            await uow.commit()
            return ws

    async def undelete(self, actor_id: str, ws_id: str) -> Workspace:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if ws is None:
                raise _not_found()
            if actor.role is not Role.OWNER:
                raise PermissionDenied("only an Owner restores a workspace", reason="OWNER_REQUIRED")
            ws.undelete(self._clock.now())
            await uow.workspaces.save(ws)
            await uow.commit()
            return ws

    async def list_members(self, actor_id: str, ws_id: str, page_size: int, page_token: str) -> tuple[list[Member], str]:
        query = f"members:{ws_id}"
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            await self._live(uow, ws_id)
            await self._actor(uow, ws_id, actor_id)
            members = await uow.members.list(ws_id, page.cursor, page.size + 1)
        more = len(members) > page.size
        members = members[: page.size]
        return members, encode_token(members[-1].user_id, query) if more and members else ""

    async def add_member(self, actor_id: str, ws_id: str, email: str, role: int) -> Member:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise InvalidArgument.field("member.email", "must be an email address", reason="INVALID_EMAIL")
        new_role = _role(role, "member.role")
        user = await self._directory.find_by_email(email)
        async with self._uow() as uow:
            await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            check_can_assign(actor.role, None, new_role, await uow.members.count_owners(ws_id))
            if user is None:
                raise NotFound("no user has this email address", reason="USER_NOT_FOUND")
            if await uow.members.get(ws_id, user.id) is not None:
                raise AlreadyExists("the user is already a member", reason="MEMBER_EXISTS")
            member = Member(ws_id, user.id, user.email, new_role, self._clock.now())
            await uow.members.add(member)
            await uow.commit()
            return member

    async def update_member(self, actor_id: str, ws_id: str, user_id: str, role: int) -> Member:
        new_role = _role(role, "member.role")
        async with self._uow() as uow:
            await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            target = await uow.members.get(ws_id, user_id)
            if target is None:
                raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
            check_can_assign(actor.role, target.role, new_role, await uow.members.count_owners(ws_id))
            await uow.members.set_role(ws_id, user_id, new_role)
            await uow.commit()
            target.role = new_role
            return target

    async def remove_member(self, actor_id: str, ws_id: str, user_id: str) -> None:
        async with self._uow() as uow:
            await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            target = await uow.members.get(ws_id, user_id)
            if target is None:
                raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
            owners = await uow.members.count_owners(ws_id)
            check_can_remove(actor.role, actor_id == user_id, target.role, owners)
            await uow.members.remove(ws_id, user_id)
            await uow.commit()

    async def transfer_ownership(self, actor_id: str, ws_id: str, new_owner_id: str) -> tuple[Workspace, Role]:
        async with self._uow() as uow:
            ws = await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if actor.role is not Role.OWNER:
                raise PermissionDenied("only an Owner transfers ownership", reason="OWNER_REQUIRED")
            target = await uow.members.get(ws_id, new_owner_id)
            if target is None:
                raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
            if new_owner_id == actor_id:
                raise FailedPrecondition("you are already the Owner", reason="ALREADY_OWNER")
            await uow.members.set_role(ws_id, new_owner_id, Role.OWNER)
            await uow.members.set_role(ws_id, actor_id, Role.ADMIN)
            await uow.commit()
            return ws, Role.ADMIN

    async def resolve_access(self, user_id: str, ws_id: str) -> AccessView:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id) if _ID.match(ws_id) else None
            if ws is None:
                return AccessView(False, False, 0, False, False, 0)
            member = await uow.members.get(ws_id, user_id) if user_id else None
        return AccessView(
            workspace_exists=True,
            member=member is not None,
            role=int(member.role) if member else 0,
            deleted=ws.deleted,
            mfa_required=ws.mfa_required,
            plan=int(ws.plan),
        )


def _role(value: int, field: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidArgument.field(field, "must be ROLE_USER, ROLE_ADMIN or ROLE_OWNER", reason="INVALID_ROLE") from None
