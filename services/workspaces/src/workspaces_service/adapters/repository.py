"""Repositories and the unit of work of the workspaces service."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Final

from servicekit.audit import AuditEvent, Outcome
from servicekit.db import SqlUnitOfWork, page_after, page_before
from servicekit.lifecycle import LifecycleEvent
from servicekit.outbox import OutboxRepository
from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import Row, and_, bindparam, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Select

from workspaces_service.adapters.tables import (
    AUDIT_OUTBOX,
    CHANGE_LOG,
    LIFECYCLE_OUTBOXES,
    AuditChainHeadRow,
    AuditEventRow,
    MemberRow,
    WorkspaceRow,
)
from workspaces_service.domain import Member, Plan, Role, Workspace
from workspaces_service.domain.audit_log import AuditEntry, ChainHead

# The change feed's topics (servicekit.changefeed; docs/architecture.md): a workspace's row or
# settings changed (key: its id; the edge drops every entry of the workspace), a membership was
# created, changed or removed (key: "<workspace_id>/<user_id>").
TOPIC_WORKSPACE = "workspace"
TOPIC_MEMBERSHIP = "membership"

_SEQUENCE = AuditEventRow.sequence  # the audit log's order, and its cursor


async def _membership_changed(session: AsyncSession, workspace_id: str, user_id: str) -> None:
    await CHANGE_LOG.record(session, TOPIC_MEMBERSHIP, f"{workspace_id}/{user_id}")


def _workspace(row: WorkspaceRow | Row[Any]) -> Workspace:
    """From an ORM row or a Core row of the workspaces table (same names)."""
    return from_row(
        Workspace, row, plan=Plan(row.plan), lifecycle_version=row.lifecycle_version or 0
    )


def _member(row: MemberRow) -> Member:
    return from_row(Member, row, role=Role(row.role))


# The edge's hot reads as Core statements built once: no ORM entity loading, identity map or
# statement building per call; SQLAlchemy's compiled cache and asyncpg's prepared statements do
# the rest. Rows come back as plain tuples with the tables' column names.
_WORKSPACES = WorkspaceRow.__table__
_MEMBERS = MemberRow.__table__
_GET_WITH_ROLE = (
    select(_WORKSPACES, _MEMBERS.c.role)
    .join(_MEMBERS, _MEMBERS.c.workspace_id == _WORKSPACES.c.id)
    .where(
        _WORKSPACES.c.id == bindparam("workspace_id"), _MEMBERS.c.user_id == bindparam("user_id")
    )
)
_GET_WITH_OPTIONAL_ROLE = (
    select(_WORKSPACES, _MEMBERS.c.role)
    .outerjoin(
        _MEMBERS,
        and_(
            _MEMBERS.c.workspace_id == _WORKSPACES.c.id, _MEMBERS.c.user_id == bindparam("user_id")
        ),
    )
    .where(_WORKSPACES.c.id == bindparam("workspace_id"))
)


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, *, lock: bool = False) -> Workspace | None:
        stmt = select(WorkspaceRow).where(WorkspaceRow.id == workspace_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _workspace(row) if row else None

    async def get_with_role(self, workspace_id: str, user_id: str) -> tuple[Workspace, Role] | None:
        """The workspace and the user's role in it, in one query; None unless the user is a member."""
        params = {"workspace_id": workspace_id, "user_id": user_id}
        row = (await self.session.execute(_GET_WITH_ROLE, params)).first()
        return (_workspace(row), Role(row.role)) if row else None

    async def get_with_optional_role(
        self, workspace_id: str, user_id: str
    ) -> tuple[Workspace, Role | None] | None:
        """The workspace and, when the user is a member, the user's role: one query (the edge's hot path)."""
        params = {"workspace_id": workspace_id, "user_id": user_id}
        row = (await self.session.execute(_GET_WITH_OPTIONAL_ROLE, params)).first()
        if row is None:
            return None
        return _workspace(row), (Role(row.role) if row.role is not None else None)

    async def by_request_id(self, user_id: str, request_id: str) -> Workspace | None:
        stmt = select(WorkspaceRow).where(
            WorkspaceRow.created_by == user_id, WorkspaceRow.request_id == request_id
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _workspace(row) if row else None

    async def add(self, ws: Workspace, created_by: str, request_id: str | None) -> None:
        self.session.add(
            WorkspaceRow(
                **columns(ws, plan=int(ws.plan), created_by=created_by, request_id=request_id)
            )
        )
        await self.session.flush()
        await CHANGE_LOG.record(self.session, TOPIC_WORKSPACE, ws.id)

    async def save(self, ws: Workspace) -> None:
        row = await self.session.get(WorkspaceRow, ws.id)
        assert row is not None
        row.display_name, row.plan, row.mfa_required = (
            ws.display_name,
            int(ws.plan),
            ws.mfa_required,
        )
        row.verified_email_required = ws.verified_email_required
        row.retention_days, row.updated_at, row.deleted_at = (
            ws.retention_days,
            ws.updated_at,
            ws.deleted_at,
        )
        row.lifecycle_version = ws.lifecycle_version
        if ws.purged_at is not None and row.purged_at is None:
            row.purged_at, row.request_id = ws.purged_at, None  # the idempotency key is freed
        await self.session.flush()
        await CHANGE_LOG.record(self.session, TOPIC_WORKSPACE, ws.id)

    async def with_lifecycle(self, after: str, limit: int) -> list[Workspace]:
        """Workspaces ever deleted (so with lifecycle events), tombstones included, by id."""
        return await self._page(after, limit, WorkspaceRow.lifecycle_version > 0)

    async def deleted_unpurged(self, after: str, limit: int) -> list[Workspace]:
        """Soft-deleted workspaces not yet purged, by id (the purge job filters by window)."""
        return await self._page(
            after, limit, WorkspaceRow.deleted_at.is_not(None), WorkspaceRow.purged_at.is_(None)
        )

    async def _page(
        self, after: str, limit: int, *conditions: ColumnElement[bool]
    ) -> list[Workspace]:
        """The workspaces meeting ``conditions``, by id after ``after``, at most ``limit``."""
        stmt = page_after(select(WorkspaceRow).where(*conditions), WorkspaceRow.id, after, limit)
        return [_workspace(r) for r in (await self.session.execute(stmt)).scalars()]

    async def list_for_user(
        self, user_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[tuple[Workspace, Role]]:
        stmt = page_after(
            select(WorkspaceRow, MemberRow.role)
            .join(MemberRow, MemberRow.workspace_id == WorkspaceRow.id)
            .where(MemberRow.user_id == user_id),
            WorkspaceRow.id,
            after,
            limit,
        )
        # a deleted workspace is listed to its Owners only, and only on request; in the query, so
        # a page is never cut short by rows left out after the read
        alive = WorkspaceRow.deleted_at.is_(None)
        stmt = stmt.where(
            alive if not show_deleted else or_(alive, MemberRow.role == int(Role.OWNER))
        )
        stmt = stmt.where(WorkspaceRow.purged_at.is_(None))
        rows = (await self.session.execute(stmt)).all()
        return [(_workspace(ws), Role(role)) for ws, role in rows]


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, user_id: str) -> Member | None:
        row = await self.session.get(MemberRow, (workspace_id, user_id))
        return _member(row) if row else None

    async def add(self, member: Member) -> None:
        self.session.add(MemberRow(**columns(member, role=int(member.role))))
        await self.session.flush()
        await _membership_changed(self.session, member.workspace_id, member.user_id)

    async def set_role(self, workspace_id: str, user_id: str, role: Role) -> None:
        row = await self.session.get(MemberRow, (workspace_id, user_id))
        assert row is not None
        row.role = int(role)
        await self.session.flush()
        await _membership_changed(self.session, workspace_id, user_id)

    async def remove(self, workspace_id: str, user_id: str) -> None:
        row = await self.session.get(MemberRow, (workspace_id, user_id))
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()
            await _membership_changed(self.session, workspace_id, user_id)

    async def remove_all(self, workspace_id: str) -> int:
        result = await self.session.execute(
            delete(MemberRow).where(MemberRow.workspace_id == workspace_id)
        )
        await CHANGE_LOG.record(self.session, TOPIC_WORKSPACE, workspace_id)  # every member at once
        return rowcount(result)

    async def count_owners(self, workspace_id: str) -> int:
        stmt = select(func.count()).where(
            MemberRow.workspace_id == workspace_id, MemberRow.role == int(Role.OWNER)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def list(self, workspace_id: str, after: str, limit: int) -> list[Member]:
        stmt = page_after(
            select(MemberRow).where(MemberRow.workspace_id == workspace_id),
            MemberRow.user_id,
            after,
            limit,
        )
        return [_member(r) for r in (await self.session.execute(stmt)).scalars()]


def _entry(row: AuditEventRow) -> AuditEntry:
    try:
        event = _event(row)
    except (ValueError, TypeError):
        # a row edited into something no event could be: keep it in the chain, failing its hash
        placeholder = AuditEvent.new(
            workspace_id=row.workspace_id,
            actor="system",
            action="audit.unreadable",
            target="",
            time=row.received_at,
        )
        return AuditEntry(placeholder, row.sequence, row.source, row.prev_hash, "")
    return AuditEntry(event, row.sequence, row.source, row.prev_hash, row.hash)


# AuditEvent's fields whose column has another name (the rest are same-named)
_EVENT_COLUMNS: Final = {"id": "event_id", "time": "event_time", "metadata": "metadata_json"}


def _event(row: AuditEventRow) -> AuditEvent:
    return from_row(
        AuditEvent,
        row,
        id=row.event_id,
        outcome=Outcome(row.outcome),
        time=row.event_time,
        metadata=json.loads(row.metadata_json),
    )


class AuditLogRepository:
    """The hash-chained audit log. Appends to one workspace hold its chain head's row lock."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_head(self, workspace_id: str) -> ChainHead:
        """Create the head if missing, then lock it until commit.

        The INSERT comes first on purpose: on SQLite it takes the database write lock before any
        read, so two appenders queue on busy_timeout instead of failing to upgrade a read lock;
        on PostgreSQL ``ON CONFLICT DO NOTHING`` + ``FOR UPDATE`` makes creation race-free.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await self.session.execute(
            insert(AuditChainHeadRow)
            .values(workspace_id=workspace_id, last_sequence=0, last_hash=ChainHead().hash)
            .on_conflict_do_nothing(index_elements=["workspace_id"])
        )
        stmt = (
            select(AuditChainHeadRow)
            .where(AuditChainHeadRow.workspace_id == workspace_id)
            .with_for_update()
        )
        row = (
            await self.session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one()
        return ChainHead(row.last_sequence, row.last_hash)

    async def head(self, workspace_id: str) -> ChainHead:
        row = await self.session.get(AuditChainHeadRow, workspace_id)
        return ChainHead(row.last_sequence, row.last_hash) if row else ChainHead()

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        stmt = select(AuditEventRow.event_id).where(AuditEventRow.event_id.in_(list(event_ids)))
        return set((await self.session.execute(stmt)).scalars())

    async def append(self, entries: Sequence[AuditEntry], received_at: dt.datetime) -> None:
        """Store entries (already chained onto the locked head) and move the head."""
        if not entries:
            return
        for entry in entries:
            e = entry.event
            self.session.add(
                AuditEventRow(
                    **columns(
                        e,
                        renamed=_EVENT_COLUMNS,
                        outcome=e.outcome.value,
                        metadata_json=json.dumps(dict(e.metadata), sort_keys=True),
                        sequence=entry.sequence,
                        source=entry.source,
                        prev_hash=entry.prev_hash,
                        hash=entry.hash,
                        received_at=received_at,
                    )
                )
            )
        last = entries[-1]
        head = await self.session.get(AuditChainHeadRow, last.event.workspace_id)
        assert head is not None
        head.last_sequence, head.last_hash = last.sequence, last.hash
        await self.session.flush()

    async def newest_first(self, workspace_id: str, before: int, limit: int) -> list[AuditEntry]:
        return await self._entries(page_before(self._log(workspace_id), _SEQUENCE, before, limit))

    async def in_order(self, workspace_id: str, after: int, limit: int) -> list[AuditEntry]:
        return await self._entries(page_after(self._log(workspace_id), _SEQUENCE, after, limit))

    @staticmethod
    def _log(workspace_id: str) -> Select[AuditEventRow]:
        return select(AuditEventRow).where(AuditEventRow.workspace_id == workspace_id)

    async def _entries(self, stmt: Select[AuditEventRow]) -> list[AuditEntry]:
        return [_entry(r) for r in (await self.session.execute(stmt)).scalars()]


class LifecycleOutboxRepository:
    """The lifecycle outboxes, one per receiving service, written with the change itself."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, event: LifecycleEvent) -> None:
        for outbox in LIFECYCLE_OUTBOXES.values():
            await outbox.record(self.session, event.envelope())


class WorkspacesUnitOfWork(SqlUnitOfWork):
    workspaces: WorkspaceRepository
    members: MemberRepository
    audit_log: AuditLogRepository
    outbox: OutboxRepository[AuditEvent]
    lifecycle: LifecycleOutboxRepository

    def _bind(self, session: AsyncSession) -> None:
        super()._bind(session)  # cooperative: a subclass may mix in another unit of work
        self.workspaces = WorkspaceRepository(session)
        self.members = MemberRepository(session)
        self.audit_log = AuditLogRepository(session)
        self.outbox = OutboxRepository(session, AUDIT_OUTBOX)
        self.lifecycle = LifecycleOutboxRepository(session)
