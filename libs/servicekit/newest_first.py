"""Newest-first keyset pages over a ``(created_at, id)`` cursor.

The sibling of ``servicekit.db.page_after`` for lists shown newest first (sessions,
invitations): the order is ``created_at`` descending, ties broken by ``id`` descending, and a page
starts strictly after the last ``(created_at, id)`` of the previous one (no OFFSET).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import and_, or_
from sqlalchemy.sql import Select

__all__ = ["page_newest_first"]

_Select = TypeVar("_Select", bound="Select[*tuple[Any, ...]]")


def page_newest_first(
    stmt: _Select,
    created_at: Any,
    row_id: Any,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> _Select:
    """``stmt``'s next page, newest first: the rows strictly after the ``(created_at, id)``
    cursor ``after`` (the first page when None), in ``(created_at, id)`` descending order, at most
    ``limit``."""
    if after is not None:
        created, last_id = after
        stmt = stmt.where(or_(created_at < created, and_(created_at == created, row_id < last_id)))
    return stmt.order_by(created_at.desc(), row_id.desc()).limit(limit)
