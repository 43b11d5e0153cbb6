"""Tables for people, JSON for programs (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

__all__ = ["emit", "emit_one", "table"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def emit(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    items = list(rows)
    if as_json:
        click.echo(json.dumps(items, indent=2))
    else:
        click.echo(table(items, columns))


def emit_one(item: Mapping[str, Any], as_json: bool, columns: Sequence[str] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(item, indent=2))
        return
    keys = columns or [k for k in item if not isinstance(item[k], (dict, list)) or item[k]]
    width = max((len(k) for k in keys), default=0)
    for key in keys:
        click.echo(f"{key.ljust(width)}  {_cell(item.get(key))}")
