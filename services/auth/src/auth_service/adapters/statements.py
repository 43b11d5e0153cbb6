"""What the auth repositories share: the session, single-use rows, the save of a value's changeable
columns and a portable insert-if-absent (row ↔ domain mapping and row counts are
``servicekit.rows``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from servicekit.rows import columns, rowcount
from sqlalchemy import Update, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from auth_service.adapters.tables import AccountTokenRow, Base, MfaChallengeRow

__all__ = ["SqlRepository", "changed", "consume_once", "insert_ignoring_conflict", "saving"]


def insert_ignoring_conflict(
    session: AsyncSession, table: type[Base], values: dict[str, object]
) -> Executable:
    """``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    return sqlite.insert(table).values(**values).on_conflict_do_nothing()


def saving(
    table: type[Base],
    value: object,
    changeable: Iterable[str],
    *,
    by: tuple[str, ...] = ("id",),
    **overrides: object,
) -> Update:
    """``UPDATE table SET <changeable> WHERE <by> = ...``: the save of the columns a domain value
    may change, found by its key columns ``by``; the values are ``value``'s same-named fields
    (``overrides`` win, as in ``servicekit.rows.columns``)."""
    values = columns(value) | overrides
    stmt = update(table).where(*(getattr(table, name) == values[name] for name in by))
    return stmt.values({name: values[name] for name in changeable})


async def changed(session: AsyncSession, stmt: Executable) -> int:
    """Run an UPDATE or DELETE without syncing the session's objects; the rows it touched."""
    return rowcount(await session.execute(stmt.execution_options(synchronize_session=False)))


async def consume_once(
    session: AsyncSession,
    table: type[MfaChallengeRow | AccountTokenRow],
    row_id: str,
    now: dt.datetime,
) -> bool:
    """Spend a live single-use row (a challenge, an account token); of concurrent callers
    exactly one gets True."""
    stmt = (
        update(table)
        .where(table.id == row_id, table.consumed_at.is_(None), table.expires_at > now)
        .values(consumed_at=now)
    )
    return await changed(session, stmt) == 1


class SqlRepository:
    """A repository over the unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
