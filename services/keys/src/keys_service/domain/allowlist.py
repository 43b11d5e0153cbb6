"""The one way a key's lists read user input (``allowed_cidrs``, ``allowed_origins``, ``scopes``),
and the one way they compare.

Each entry is normalised on its own; every bad entry and every duplicate (after normalisation)
is reported as ``field[i]`` in one INVALID_ARGUMENT, so a user fixes a list in one round trip.
Once read, a list is a value (:class:`EntrySet`): equal to another of its kind with the same
entries, in whatever order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from servicekit.errors import FieldViolation, InvalidArgument

__all__ = ["EntryRules", "EntrySet"]

EntryT = TypeVar("EntryT", bound=Hashable)


@dataclass(frozen=True, slots=True)
class EntryRules(Generic[EntryT]):
    """How one allowlist reads its entries.

    ``normalise`` raises ValueError with a user-facing description; ``too_many`` is the reason
    when there are more than ``limit`` entries (``at most <limit> <noun>``), ``invalid`` when any
    entry is bad or repeated; ``echo`` adds the normalised value to a duplicate's description.
    """

    normalise: Callable[[str], EntryT]
    limit: int
    too_many: str
    invalid: str
    noun: str = "entries"
    echo: bool = True

    def parse(self, entries: Sequence[str], field: str) -> list[EntryT]:
        """The normalised entries in input order, or InvalidArgument naming ``field[i]``."""
        if len(entries) > self.limit:
            raise InvalidArgument.field(
                field, f"at most {self.limit} entries", reason=self.too_many
            )
        violations: list[FieldViolation] = []
        seen: dict[EntryT, int] = {}
        for i, entry in enumerate(entries):
            try:
                value = self.normalise(entry)
            except ValueError as exc:
                violations.append(FieldViolation(f"{field}[{i}]", str(exc)))
                continue
            if value in seen:
                desc = f"duplicates {field}[{seen[value]}]" + (f" ({value})" if self.echo else "")
                violations.append(FieldViolation(f"{field}[{i}]", desc))
                continue
            seen[value] = i
        if violations:
            message = "; ".join(f"{v.field}: {v.description}" for v in violations)
            raise InvalidArgument(message, reason=self.invalid, violations=violations)
        return list(seen)


class EntrySet(ABC):
    """A key's list as a value: equal to (and hashed as) one of its own kind with the same entries,
    whatever their order; its repr shows the normalised entries."""

    __slots__ = ()

    @abstractmethod
    def entries(self) -> frozenset[Hashable]:
        """The entries, as what equality compares."""

    @abstractmethod
    def as_strings(self) -> list[str]:
        """The normalised entries, for storage and API responses."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.entries() == other.entries()

    def __hash__(self) -> int:
        return hash(self.entries())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_strings()!r})"
