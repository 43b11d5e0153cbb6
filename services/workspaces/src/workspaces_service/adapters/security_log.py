"""A user's security log: the account-level chain's entries about that user (migration ws_0006).

Account-level events (empty ``workspace_id``: logins, refusals, refresh-token reuse, MFA and
password changes, resets, email changes) are chained like any workspace's. An event is about
user ``u`` when its target is ``users/u`` or lies under it (``users/u/sessions/s``); the index
``(workspace_id, target, sequence)`` serves both halves of that test.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from workspaces_service.adapters.repository import _entry
from workspaces_service.adapters.tables import AuditEventRow
from workspaces_service.domain.audit_log import AuditEntry

ACCOUNT_CHAIN = ""


class SecurityLogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest_first(self, user_id: str, before: int, limit: int) -> list[AuditEntry]:
        own = f"users/{user_id}"
        # "users/u/" ≤ target < "users/u0": everything under users/u/ and nothing of users/uX
        under = and_(AuditEventRow.target >= own + "/", AuditEventRow.target < own + "0")
        stmt = select(AuditEventRow).where(
            AuditEventRow.workspace_id == ACCOUNT_CHAIN,
            or_(AuditEventRow.target == own, under),
        )
        if before:
            stmt = stmt.where(AuditEventRow.sequence < before)
        stmt = stmt.order_by(AuditEventRow.sequence.desc()).limit(limit)
        return [_entry(r) for r in (await self.session.execute(stmt)).scalars()]
