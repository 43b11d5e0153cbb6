"""The login throttle's counters (per account and per address), changed by compare-and-set."""

from __future__ import annotations

import datetime as dt

from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import case, delete, or_, select, update

from auth_service.adapters.statements import SqlRepository, changed, insert_ignoring_conflict
from auth_service.adapters.tables import ThrottleRow
from auth_service.domain import ThrottleState


class ThrottleRepository(SqlRepository):
    """Counters changed only by compare-and-set on ``version`` (or an insert that may lose)."""

    async def get(self, key: str) -> ThrottleState | None:
        stmt = select(ThrottleRow).where(ThrottleRow.key == key).with_for_update()
        row = (
            await self.session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()
        return from_row(ThrottleState, row) if row else None

    async def store(self, key: str, expected: ThrottleState | None, new: ThrottleState) -> bool:
        """Write ``new`` if the counter is still ``expected`` (absent when None)."""
        values = columns(new)
        if expected is None:
            insert = insert_ignoring_conflict(self.session, ThrottleRow, {"key": key, **values})
            return rowcount(await self.session.execute(insert)) == 1
        stmt = (
            update(ThrottleRow)
            .where(ThrottleRow.key == key, ThrottleRow.version == expected.version)
            .values(**values)
        )
        return await changed(self.session, stmt) == 1

    async def reset(self, key: str) -> None:
        await self.session.execute(delete(ThrottleRow).where(ThrottleRow.key == key))

    async def refund(self, key: str) -> None:
        """Give back one reserved attempt (a success that must not clear the whole counter)."""
        stmt = (
            update(ThrottleRow)
            .where(ThrottleRow.key == key)
            .values(
                failures=case((ThrottleRow.failures > 0, ThrottleRow.failures - 1), else_=0),
                hour_failures=case(
                    (ThrottleRow.hour_failures > 0, ThrottleRow.hour_failures - 1), else_=0
                ),
                version=ThrottleRow.version + 1,
            )
        )
        await changed(self.session, stmt)

    async def purge(self, idle_since: dt.datetime, now: dt.datetime) -> int:
        stmt = delete(ThrottleRow).where(
            ThrottleRow.last_failure_at < idle_since,
            or_(ThrottleRow.blocked_until.is_(None), ThrottleRow.blocked_until < now),
        )
        return rowcount(await self.session.execute(stmt))
