"""Row ↔ domain value mapping shared by every service's repositories.

The domain dataclasses name their fields after the table's columns, so the mapping is driven by
the dataclass fields; a repository writes only the columns that differ (an enum, a renamed field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar, cast

from sqlalchemy.engine import CursorResult

__all__ = ["columns", "from_row", "rowcount"]

D = TypeVar("D")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    # cached per class: the hot reads map a row per call and fields() is not free
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(cast(Any, kind)))
    return names


def from_row(kind: type[D], row: object, **overrides: object) -> D:
    """The domain dataclass ``kind`` from the row's same-named columns (``overrides`` win)."""
    values = {name: getattr(row, name) for name in _field_names(kind) if name not in overrides}
    return kind(**values, **overrides)


def columns(
    value: object, *, renamed: Mapping[str, str] | None = None, **overrides: object
) -> dict[str, Any]:
    """A domain dataclass as the values of its row's columns: same-named, or ``renamed``
    (field → column); ``overrides`` win."""
    names = renamed or {}
    values = {names.get(n, n): getattr(value, n) for n in _field_names(type(value))}
    return values | overrides


def rowcount(result: object) -> int:
    """The rows an UPDATE or DELETE touched (``session.execute`` types its result loosely)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)
