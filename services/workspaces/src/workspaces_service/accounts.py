"""An account's deletion, as the workspaces service sees it: every membership goes, unless the
user is the last Owner of a workspace (then nothing goes, and the answer names those)."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.audit import AuditEvent
from servicekit.usecase import Collaborators
from sqlalchemy import select

from workspaces_service.adapters.invitations import InvitationsUnitOfWork
from workspaces_service.adapters.tables import MemberRow
from workspaces_service.domain import Role, Workspace
from workspaces_service.usecases.common import _member_name


@dataclass(frozen=True, slots=True)
class Removal:
    removed: int
    blocking: list[Workspace]


class AccountService:
    def __init__(self, shared: Collaborators[InvitationsUnitOfWork]) -> None:
        """``shared``: the collaborators every use case has (``servicekit.usecase``)."""
        self._uow, self._clock, self._origin = shared.uow, shared.clock, shared.origin
        self._after_commit = shared.after_commit

    async def remove_user(self, user_id: str) -> Removal:
        """All-or-nothing, under the workspaces' row locks (taken in id order)."""
        async with self._uow() as uow:
            rows = (
                await uow.session.execute(
                    select(MemberRow.workspace_id, MemberRow.role)
                    .where(MemberRow.user_id == user_id)
                    .order_by(MemberRow.workspace_id)
                )
            ).all()
            blocking: list[Workspace] = []
            memberships: list[tuple[str, Role]] = []
            for ws_id, role in rows:
                ws = await uow.workspaces.get(ws_id, lock=True)
                if ws is None or ws.purged:
                    continue
                memberships.append((ws_id, Role(role)))
                if Role(role) is Role.OWNER and await uow.members.count_owners(ws_id) <= 1:
                    blocking.append(ws)
            if blocking:
                return Removal(0, blocking)
            origin = self._origin()
            for ws_id, role in memberships:
                await uow.members.remove(ws_id, user_id)
                await uow.outbox.record(
                    AuditEvent.new(
                        workspace_id=ws_id,
                        actor=f"user:{user_id}",
                        action="member.remove",
                        target=_member_name(ws_id, user_id),
                        time=self._clock.now(),
                        request_id=origin.request_id,
                        client_ip=origin.client_ip,
                        metadata={"role": role.name.lower(), "reason": "account_deleted"},
                    )
                )
            await uow.commit()
        self._after_commit()
        return Removal(len(memberships), [])
