"""The one way a key's allowlists read user input (``allowed_cidrs``, ``allowed_origins``).

Each entry is normalised on its own; every bad entry and every duplicate (after normalisation)
is reported as ``field[i]`` in one INVALID_ARGUMENT, so a user fixes a list in one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from servicekit.errors import FieldViolation, InvalidArgument

__all__ = ["parse_entries"]

EntryT = TypeVar("EntryT", bound=Hashable)


def parse_entries(
    entries: Sequence[str],
    normalise: Callable[[str], EntryT],
    *,
    field: str,
    limit: int,
    too_many: str,
    invalid: str,
) -> list[EntryT]:
    """The normalised entries in input order, or InvalidArgument.

    ``normalise`` raises ValueError with a user-facing description; ``too_many`` is the reason
    when there are more than ``limit`` entries, ``invalid`` when any entry is bad or repeated.
    """
    if len(entries) > limit:
        raise InvalidArgument.field(field, f"at most {limit} entries", reason=too_many)
    violations: list[FieldViolation] = []
    seen: dict[EntryT, int] = {}
    for i, entry in enumerate(entries):
        try:
            value = normalise(entry)
        except ValueError as exc:
            violations.append(FieldViolation(f"{field}[{i}]", str(exc)))
            continue
        if value in seen:
            desc = f"duplicates {field}[{seen[value]}] ({value})"
            violations.append(FieldViolation(f"{field}[{i}]", desc))
            continue
        seen[value] = i
    if violations:
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgument(message, reason=invalid, violations=violations)
    return list(seen)
