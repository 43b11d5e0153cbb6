"""What the auth repositories share: the session, row ↔ domain mapping, row counts, and a portable
insert-if-absent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar, cast

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from auth_service.adapters.tables import AccountTokenRow, Base, MfaChallengeRow

D = TypeVar("D")


def rowcount(result: object) -> int:
    """The rows an UPDATE or DELETE touched."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def insert_ignoring_conflict(
    session: AsyncSession, table: type[Base], values: dict[str, object]
) -> Executable:
    """``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    return sqlite.insert(table).values(**values).on_conflict_do_nothing()


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


def from_row(kind: type[D], row: object, **overrides: object) -> D:
    """The domain dataclass ``kind`` from the row's same-named columns (``overrides`` win)."""
    names = [f.name for f in fields(cast(Any, kind)) if f.name not in overrides]
    return kind(**{name: getattr(row, name) for name in names}, **overrides)


def columns(
    value: object, *, renamed: Mapping[str, str] | None = None, **overrides: object
) -> dict[str, Any]:
    """A domain dataclass as the values of its row's columns: same-named, or ``renamed``
    (field → column); ``overrides`` win."""
    names = renamed or {}
    values = {names.get(f.name, f.name): getattr(value, f.name) for f in fields(cast(Any, value))}
    return values | overrides
