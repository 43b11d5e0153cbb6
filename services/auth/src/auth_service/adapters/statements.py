"""SQL helpers the auth repositories share: row counts and a portable insert-if-absent."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from auth_service.adapters.tables import Base


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
