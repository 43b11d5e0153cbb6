"""Invitations' table and repository, and the unit of work that adds them and the mail outbox."""

from __future__ import annotations

import datetime as dt

from servicekit.db import UtcDateTime
from servicekit.mail import MailingUnitOfWork, MailOutbox
from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import ForeignKey, Index, Integer, String, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from workspaces_service.adapters.repository import WorkspacesUnitOfWork
from workspaces_service.adapters.security_log import SecurityLogRepository
from workspaces_service.adapters.tables import Base
from workspaces_service.domain import Role
from workspaces_service.domain.invitation import Invitation


class InvitationRow(Base):
    """An invitation of an email address into a workspace (migration ws_0005). Only the
    SHA-256 of its 256-bit token is stored."""

    __tablename__ = "workspace_invitations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    accepted_by: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_workspace_invitations_ws_created", "workspace_id", "created_at", "id"),
    )


# Invitation mails, sealed in the outbox, sent by the mail relay (migration ws_0005).
MAIL_OUTBOX = MailOutbox.define("workspaces", Base.metadata)


def _invitation(row: InvitationRow) -> Invitation:
    return from_row(Invitation, row, role=Role(row.role))


# neither accepted nor revoked; with an expiry still ahead, such an invitation is pending
_UNANSWERED = (InvitationRow.accepted_at.is_(None), InvitationRow.revoked_at.is_(None))


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, inv: Invitation) -> None:
        self.session.add(
            InvitationRow(
                **columns(
                    inv, role=int(inv.role), accepted_at=None, accepted_by="", revoked_at=None
                )
            )
        )
        await self.session.flush()

    async def get(self, workspace_id: str, invitation_id: str) -> Invitation | None:
        row = await self.session.get(InvitationRow, invitation_id)
        return _invitation(row) if row and row.workspace_id == workspace_id else None

    async def by_hash(self, digest: str) -> Invitation | None:
        stmt = select(InvitationRow).where(InvitationRow.token_hash == digest)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _invitation(row) if row else None

    async def accept(self, invitation_id: str, user_id: str, now: dt.datetime) -> bool:
        """Single use: of concurrent acceptances exactly one sees True."""
        stmt = (
            update(InvitationRow)
            .where(InvitationRow.id == invitation_id, *_UNANSWERED, InvitationRow.expires_at > now)
            .values(accepted_at=now, accepted_by=user_id)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def count_since(self, workspace_id: str, email: str, since: dt.datetime) -> int:
        stmt = select(func.count()).where(
            InvitationRow.workspace_id == workspace_id,
            InvitationRow.email == email,
            InvitationRow.created_at >= since,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def pending_for(self, email: str, now: dt.datetime) -> bool:
        stmt = (
            select(InvitationRow.id)
            .where(InvitationRow.email == email, *_UNANSWERED, InvitationRow.expires_at > now)
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def revoke(self, invitation_id: str, now: dt.datetime) -> bool:
        return await self._revoke_unanswered(now, InvitationRow.id == invitation_id) == 1

    async def revoke_pending_for(self, workspace_id: str, email: str, now: dt.datetime) -> int:
        """A new invitation of an address supersedes its pending ones."""
        return await self._revoke_unanswered(
            now, InvitationRow.workspace_id == workspace_id, InvitationRow.email == email
        )

    async def _revoke_unanswered(self, now: dt.datetime, *where: ColumnElement[bool]) -> int:
        """Revoke the unanswered invitations that match ``where``; how many were."""
        stmt = (
            update(InvitationRow)
            .where(*where, *_UNANSWERED)
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt))

    async def list(
        self, workspace_id: str, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Invitation]:
        """Newest first, strictly after the ``(created_at, id)`` cursor."""
        stmt = select(InvitationRow).where(InvitationRow.workspace_id == workspace_id)
        if after is not None:
            created, iid = after
            stmt = stmt.where(
                or_(
                    InvitationRow.created_at < created,
                    and_(InvitationRow.created_at == created, InvitationRow.id < iid),
                )
            )
        stmt = stmt.order_by(InvitationRow.created_at.desc(), InvitationRow.id.desc()).limit(limit)
        return [_invitation(r) for r in (await self.session.execute(stmt)).scalars()]


class InvitationsUnitOfWork(WorkspacesUnitOfWork, MailingUnitOfWork):
    invitations: InvitationRepository
    security_log: SecurityLogRepository

    def _bind(self, session: AsyncSession) -> None:
        super()._bind(session)  # the workspaces repositories, then the mail outbox
        self.invitations = InvitationRepository(session)
        self.security_log = SecurityLogRepository(session)
