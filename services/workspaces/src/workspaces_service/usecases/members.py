"""Members: list, add, change a role, remove, and ownership transfer."""

from __future__ import annotations

import builtins

from servicekit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from servicekit.pagination import fetch_page

from workspaces_service.domain import Member, Role, Workspace, check_can_assign, check_can_remove
from workspaces_service.ports import UnitOfWork
from workspaces_service.usecases.common import _email, _member_name, _role
from workspaces_service.usecases.core import WorkspacesCore

__all__ = ["Memberships"]


class Memberships(WorkspacesCore):
    """Who is in a workspace, with which role; the actor's role is read inside the transaction."""

    async def list_members(
        self, actor_id: str, ws_id: str, page_size: int, page_token: str
    ) -> tuple[builtins.list[Member], str]:
        async def read(after: str, limit: int) -> builtins.list[Member]:
            async with self._uow() as uow:
                await self._live(uow, ws_id)
                await self._actor(uow, ws_id, actor_id)
                return await uow.members.list(ws_id, after, limit)

        return await fetch_page(
            page_size, page_token, f"members:{ws_id}", read, lambda member: member.user_id
        )

    async def add_member(self, actor_id: str, ws_id: str, email: str, role: int) -> Member:
        email = _email(email, "member.email")
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
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "member.add",
                _member_name(ws_id, user.id),
                {"role": new_role.name.lower()},
            )
            await uow.commit()
        self._after_commit()
        return member

    async def update_member(self, actor_id: str, ws_id: str, user_id: str, role: int) -> Member:
        new_role = _role(role, "member.role")
        async with self._uow() as uow:
            actor, target = await self._actor_and_member(uow, ws_id, actor_id, user_id)
            check_can_assign(
                actor.role, target.role, new_role, await uow.members.count_owners(ws_id)
            )
            await uow.members.set_role(ws_id, user_id, new_role)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "member.update",
                _member_name(ws_id, user_id),
                {"role": new_role.name.lower(), "previous_role": target.role.name.lower()},
            )
            await uow.commit()
        self._after_commit()
        target.role = new_role
        return target

    async def remove_member(self, actor_id: str, ws_id: str, user_id: str) -> None:
        async with self._uow() as uow:
            actor, target = await self._actor_and_member(uow, ws_id, actor_id, user_id)
            owners = await uow.members.count_owners(ws_id)
            check_can_remove(actor.role, actor_id == user_id, target.role, owners)
            await uow.members.remove(ws_id, user_id)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "member.remove",
                _member_name(ws_id, user_id),
                {"role": target.role.name.lower()},
            )
            await uow.commit()
        self._after_commit()

    async def transfer_ownership(
        self, actor_id: str, ws_id: str, new_owner_id: str
    ) -> tuple[Workspace, Role]:
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
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "workspace.transferOwnership",
                f"workspaces/{ws_id}",
                {
                    "new_owner": _member_name(ws_id, new_owner_id),
                    "previous_owner": _member_name(ws_id, actor_id),
                },
            )
            await uow.commit()
        self._after_commit()
        return ws, Role.ADMIN

    async def _actor_and_member(
        self, uow: UnitOfWork, ws_id: str, actor_id: str, user_id: str
    ) -> tuple[Member, Member]:
        """The acting member and the member acted on, in a live workspace locked for the change."""
        await self._live(uow, ws_id, lock=True)
        actor = await self._actor(uow, ws_id, actor_id)
        target = await uow.members.get(ws_id, user_id)
        if target is None:
            raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
        return actor, target
