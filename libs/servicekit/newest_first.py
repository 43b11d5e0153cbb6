"""Newest-first keyset pages: the descending counterpart of :func:`servicekit.db.page_after`.

A log-like listing (deliveries, audit entries, security events) reads its newest rows first and
pages towards the oldest; its cursor is the last key a page showed, and no cursor (empty, zero)
is the first page.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select

__all__ = ["page_before"]

_Select = TypeVar("_Select", bound="Select[*tuple[Any, ...]]")


def page_before(stmt: _Select, key: Any, before: object, limit: int) -> _Select:
    """``stmt``'s next newest-first page: the rows whose ``key`` comes before the cursor
    ``before`` (all of them when it is empty), in descending ``key`` order, at most ``limit``."""
    if before:
        stmt = stmt.where(key < before)
    return stmt.order_by(key.desc()).limit(limit)
