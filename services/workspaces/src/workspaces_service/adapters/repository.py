"""Repositories and the unit of work of the workspaces service."""

from __future__ import annotations

from servicekit.db import SqlUnitOfWork
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workspaces_service.adapters.tables import MemberRow, WorkspaceRow
from workspaces_service.domain import Member, Plan, Role, Workspace


def _workspace(row: WorkspaceRow) -> Workspace:
    return Workspace(
        id=row.id,
        display_name=row.display_name,
        plan=Plan(row.plan),
        mfa_required=row.mfa_required,
        retention_days=row.retention_days,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def _member(row: MemberRow) -> Member:
    return Member(row.workspace_id, row.user_id, row.email, Role(row.role), row.created_at)


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, *, lock: bool = False) -> Workspace | None:
        stmt = select(WorkspaceRow).where(WorkspaceRow.id == workspace_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _workspace(row) if row else None

    async def by_request_id(self, user_id: str, request_id: str) -> Workspace | None:
        stmt = select(WorkspaceRow).where(
            WorkspaceRow.created_by == user_id, WorkspaceRow.request_id == request_id
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _workspace(row) if row else None

    async def add(self, ws: Workspace, created_by: str, request_id: str | None) -> None:
        self.session.add(
            WorkspaceRow(
                id=ws.id,
                display_name=ws.display_name,
                plan=int(ws.plan),
                mfa_required=ws.mfa_required,
                retention_days=ws.retention_days,
                created_by=created_by,
                request_id=request_id,
                created_at=ws.created_at,
                updated_at=ws.updated_at,
                deleted_at=ws.deleted_at,
            )
        )
        await self.session.flush()

    async def save(self, ws: Workspace) -> None:
        row = await self.session.get(WorkspaceRow, ws.id)
        assert row is not None
        row.display_name, row.plan, row.mfa_required = ws.display_name, int(ws.plan), ws.mfa_required
        row.retention_days, row.updated_at, row.deleted_at = ws.retention_days, ws.updated_at, ws.deleted_at
        await self.session.flush()

    async def list_for_user(
        self, user_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[tuple[Workspace, Role]]:
        stmt = (
            select(WorkspaceRow, MemberRow.role)
            .join(MemberRow, MemberRow.workspace_id == WorkspaceRow.id)
            .where(MemberRow.user_id == user_id, WorkspaceRow.id > after)
            .order_by(WorkspaceRow.id)
            .limit(limit)
        )
        if not show_deleted:
            stmt = stmt.where(WorkspaceRow.deleted_at.is_(None))
        rows = (await self.session.execute(stmt)).all()
        return [(_workspace(ws), Role(role)) for ws, role in rows]


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, user_id: str) -> Member | None:
        row = await self.session.get(MemberRow, (workspace_id, user_id))
        return _member(row) if row else None

    async def add(self, member: Member) -> None:
        self.session.add(
            MemberRow(
                workspace_id=member.workspace_id,
                user_id=member.user_id,
                email=member.email,
                role=int(member.role),
                created_at=member.created_at,
            )
        )
        await self.session.flush()

    async def set_role(self, workspace_id: str, user_id: str, role: Role) -> None:
        row = await self.session.get(MemberRow, (workspace_id, user_id))
        assert row is not None
        row.role = int(role)
        await self.session.flush()

    async def remove(self, workspace_id: str, user_id: str) -> None:
        row = await self.session.get(MemberRow, (workspace_id, user_id))
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()

    async def count_owners(self, workspace_id: str) -> int:
        stmt = select(func.count()).where(
            MemberRow.workspace_id == workspace_id, MemberRow.role == int(Role.OWNER)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def list(self, workspace_id: str, after: str, limit: int) -> list[Member]:
        stmt = (
            select(MemberRow)
            .where(MemberRow.workspace_id == workspace_id, MemberRow.user_id > after)
            .order_by(MemberRow.user_id)
            .limit(limit)
        )
        return [_member(r) for r in (await self.session.execute(stmt)).scalars()]


class WorkspacesUnitOfWork(SqlUnitOfWork):
    workspaces: WorkspaceRepository
    members: MemberRepository

    def _bind(self, session: AsyncSession) -> None:
        self.workspaces = WorkspaceRepository(session)
        self.members = MemberRepository(session)
