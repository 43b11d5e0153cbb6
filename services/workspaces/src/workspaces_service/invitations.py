"""Use cases of invitations: invite, list, revoke, accept (docs/workspaces.md "Invitations").

Owners and Admins invite an email address with a role under today's role rules (only an Owner
invites an Owner). The invitation mail carries the only copy of a single-use token (7 days).
Accepting needs the invited address signed in: the caller's account, looked up through the auth
service, must have that address. The role rules are checked again at acceptance against the
inviter's role then (an inviter who lost the right makes the invitation void). Every change is
audited in the workspace's chain with ids and the role only, never the address or the token.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from servicekit.mail import Mail
from servicekit.pagination import fetch_page
from servicekit.usecase import Collaborators, UserEvents

from workspaces_service.adapters.invitations import InvitationsUnitOfWork
from workspaces_service.domain import Member, Role, Workspace, check_can_assign
from workspaces_service.domain.invitation import (
    TTL,
    Invitation,
    InvitationState,
    invitation_token_hash,
    invitation_token_well_formed,
    new_invitation_token,
)
from workspaces_service.ports import UserDirectory
from workspaces_service.usecases.common import _email, _member_name, _role

_log = logging.getLogger("workspaces_service")
_SIGNATURE = "\n-- \nRailguard. This mail was sent automatically; replies are not read.\n"


@dataclass(frozen=True, slots=True)
class InvitationConfig:
    public_url: str = "https://127.0.0.1:8443"
    ttl: dt.timedelta = TTL
    # At most this many invitations of one address per workspace a day (its mailbox is not
    # flooded); the edge's WRITE class limits each caller as well.
    per_address_daily: int = 5


def _invalid_invitation() -> InvalidArgument:
    # One answer for unknown, used, revoked, expired and another address's invitations.
    return InvalidArgument.field(
        "token", "is invalid, expired or already used", reason="INVALID_TOKEN"
    )


def _invitation_name(ws_id: str, invitation_id: str) -> str:
    return f"workspaces/{ws_id}/invitations/{invitation_id}"


def _not_found() -> NotFound:
    return NotFound("resource not found", reason="NOT_FOUND")


def invitation_mail(
    public_url: str, workspace: str, role: Role, token: str, ttl: dt.timedelta
) -> tuple[str, str]:
    link = f"{public_url.rstrip('/')}/accept-invitation?{urlencode({'token': token})}"
    return (
        f"You are invited to the Railguard workspace {workspace}",
        f'You are invited to join the Railguard workspace "{workspace}" as '
        f"{role.name.title()}.\n\n"
        f"To accept, sign in (or sign up) with this address and open this link within "
        f"{ttl.days} days:\n\n    {link}\n\n"
        "The link works once. If you do not know this workspace, ignore this mail.\n" + _SIGNATURE,
    )


class InvitationService:
    def __init__(
        self,
        shared: Collaborators[InvitationsUnitOfWork],
        directory: UserDirectory,
        config: InvitationConfig,
    ) -> None:
        """``shared``: the collaborators every use case has (``servicekit.usecase``)."""
        self._uow, self._clock, self._new_id = shared.uow, shared.clock, shared.new_id
        self._after_commit = shared.after_commit
        self._directory, self._config = directory, config
        self._audit = UserEvents(shared.origin, shared.clock)

    def state_of(self, invitation: Invitation) -> int:
        return int(invitation.state(self._clock.now()))

    async def _admin_of_live(
        self, uow: InvitationsUnitOfWork, ws_id: str, actor_id: str
    ) -> tuple[Workspace, Member]:
        ws = await uow.workspaces.get(ws_id, lock=True)
        actor = await uow.members.get(ws_id, actor_id)
        if ws is None or actor is None:
            raise _not_found()  # not a member ≡ no such workspace
        if ws.deleted:
            raise NotFound("the workspace is deleted", reason="WORKSPACE_DELETED")
        if actor.role not in (Role.OWNER, Role.ADMIN):
            raise PermissionDenied("your role does not allow this action", reason="ROLE_TOO_LOW")
        return ws, actor

    async def create(self, actor_id: str, ws_id: str, email: str, role: int) -> Invitation:
        address = _email(email, "invitation.email")
        new_role = _role(role, "invitation.role")
        token = new_invitation_token()
        now = self._clock.now()
        async with self._uow() as uow:
            ws, actor = await self._admin_of_live(uow, ws_id, actor_id)
            check_can_assign(actor.role, None, new_role, await uow.members.count_owners(ws_id))
            day_ago = now - dt.timedelta(days=1)
            if await uow.invitations.count_since(ws_id, address, day_ago) >= (
                self._config.per_address_daily
            ):
                raise ResourceExhausted(
                    "too many invitations of this address today; retry later",
                    reason="INVITATION_THROTTLED",
                    retry_after=3600,
                )
            await uow.invitations.revoke_pending_for(ws_id, address, now)
            invitation = Invitation(
                self._new_id(),
                ws_id,
                address,
                new_role,
                invitation_token_hash(token),
                actor_id,
                now,
                now + self._config.ttl,
            )
            await uow.invitations.add(invitation)
            subject, body = invitation_mail(
                self._config.public_url, ws.display_name, new_role, token, self._config.ttl
            )
            await uow.mail.record(
                Mail.new(to=address, subject=subject, body=body, template="invitation", now=now)
            )
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "invitation.create",
                _invitation_name(ws_id, invitation.id),
                {"invitation_id": invitation.id, "role": new_role.name.lower()},
            )
            await uow.commit()
        self._after_commit()
        return invitation

    async def list(
        self, actor_id: str, ws_id: str, page_size: int, page_token: str
    ) -> tuple[list[Invitation], str]:
        async def read(cursor: str, limit: int) -> list[Invitation]:
            after: tuple[dt.datetime, str] | None = None
            if cursor:
                created, _, iid = cursor.partition("|")
                after = dt.datetime.fromisoformat(created), iid
            async with self._uow() as uow:
                await self._admin_of_live(uow, ws_id, actor_id)
                return await uow.invitations.list(ws_id, after, limit)

        return await fetch_page(
            page_size,
            page_token,
            f"invitations:{ws_id}",
            read,
            lambda row: f"{row.created_at.isoformat()}|{row.id}",
        )

    async def revoke(self, actor_id: str, ws_id: str, invitation_id: str) -> Invitation:
        now = self._clock.now()
        async with self._uow() as uow:
            _, actor = await self._admin_of_live(uow, ws_id, actor_id)
            invitation = await uow.invitations.get(ws_id, invitation_id)
            if invitation is None:
                raise NotFound("invitation not found", reason="INVITATION_NOT_FOUND")
            if invitation.role is Role.OWNER and actor.role is not Role.OWNER:
                raise PermissionDenied(
                    "only an Owner revokes an Owner invitation", reason="OWNER_REQUIRED"
                )
            if not await uow.invitations.revoke(invitation_id, now):
                raise FailedPrecondition(
                    "the invitation is no longer pending", reason="INVITATION_NOT_PENDING"
                )
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "invitation.revoke",
                _invitation_name(ws_id, invitation_id),
                {"invitation_id": invitation_id},
            )
            await uow.commit()
            revoked = await uow.invitations.get(ws_id, invitation_id)
        self._after_commit()
        assert revoked is not None
        return revoked

    async def pending_for(self, email: str) -> bool:
        async with self._uow() as uow:
            return await uow.invitations.pending_for(email.strip().lower(), self._clock.now())

    async def accept(self, user_id: str, token: str) -> Member:
        """Join as the invited role; the caller must be signed in with the invited address."""
        if not invitation_token_well_formed(token):
            raise _invalid_invitation()
        async with self._uow() as uow:
            invitation = await uow.invitations.by_hash(invitation_token_hash(token))
        now = self._clock.now()
        if invitation is None or invitation.state(now) is not InvitationState.PENDING:
            raise _invalid_invitation()
        caller = await self._directory.find_by_id(user_id)
        if caller is None or caller.email.lower() != invitation.email:
            raise _invalid_invitation()  # another address's invitation: the same answer
        ws_id = invitation.workspace_id
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            inviter = await uow.members.get(ws_id, invitation.invited_by)
            if ws is None or ws.deleted or inviter is None:
                raise _invalid_invitation()
            if inviter.role not in (Role.OWNER, Role.ADMIN):
                raise _invalid_invitation()
            check_can_assign(
                inviter.role, None, invitation.role, await uow.members.count_owners(ws_id)
            )
            if not await uow.invitations.accept(invitation.id, user_id, now):
                raise _invalid_invitation()
            if await uow.members.get(ws_id, user_id) is not None:
                raise FailedPrecondition("you are already a member", reason="MEMBER_EXISTS")
            member = Member(ws_id, user_id, caller.email.lower(), invitation.role, now)
            await uow.members.add(member)
            await self._audit(
                uow,
                user_id,
                ws_id,
                "invitation.accept",
                _member_name(ws_id, user_id),
                {"invitation_id": invitation.id, "role": invitation.role.name.lower()},
            )
            await uow.commit()
        self._after_commit()
        _log.info("invitation accepted", extra={"workspace_id": ws_id, "user_id": user_id})
        return member
