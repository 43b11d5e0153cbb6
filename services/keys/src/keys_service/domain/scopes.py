"""API key scopes: ``<resource>:<action>`` strings such as ``keys:read`` or ``credentials:write``.

Least privilege by default: a key holds exactly the scopes it was given, no wildcards, and at least
one. The only implication is **``<resource>:write`` covers ``<resource>:read``** of the same
resource (you cannot sensibly change what you may not see, and it is what users of Stripe-style
read/write permissions expect); nothing crosses resources.

Which scopes exist is not decided here: the catalogue comes from the proto access rules and is
passed in as a :class:`ScopeCatalogue`. A requested set must also stay within a ceiling, the
creator's own rights (DESIGN §4: a key's scopes never exceed its creator's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from servicekit.errors import InvalidArgument, PermissionDenied

from .allowlist import EntryRules, EntrySet

__all__ = [
    "MAX_SCOPES",
    "Scope",
    "ScopeCatalogue",
    "ScopeSet",
    "ensure_within",
]

MAX_SCOPES: Final = 64
_SCOPE: Final = re.compile(r"([a-z][a-z0-9_]{0,31}):([a-z][a-z0-9_]{0,31})")
_IMPLIED: Final = {"write": "read"}


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """One permission: an action on a resource type."""

    resource: str
    action: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``resource:action``; raise ValueError with a user-facing description."""
        match = _SCOPE.fullmatch(text)
        if match is None:
            raise ValueError(
                "must be <resource>:<action>, lower-case letters, digits and _ (e.g. keys:read)"
            )
        return cls(match[1], match[2])

    def implied(self) -> frozenset[Scope]:
        """This scope and what it implies (``keys:write`` → ``keys:read``)."""
        extra = _IMPLIED.get(self.action)
        return frozenset({self} if extra is None else {self, Scope(self.resource, extra)})

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


def _as_scope(value: Scope | str) -> Scope:
    return value if isinstance(value, Scope) else Scope.parse(value)


class ScopeCatalogue:
    """The scopes that exist (from the proto access rules); anything else is a typo or a guess."""

    __slots__ = ("_scopes",)

    def __init__(self, scopes: Iterable[Scope | str]) -> None:
        self._scopes = frozenset(_as_scope(s) for s in scopes)

    def __contains__(self, scope: object) -> bool:
        return scope in self._scopes

    def __iter__(self) -> Iterator[Scope]:
        return iter(sorted(self._scopes))

    def __len__(self) -> int:
        return len(self._scopes)


class ScopeSet(EntrySet):
    """The scopes a key (or a creator) holds, with implication-aware :meth:`covers`."""

    __slots__ = ("_effective", "scopes")

    def __init__(self, scopes: Iterable[Scope | str] = ()) -> None:
        self.scopes: frozenset[Scope] = frozenset(_as_scope(s) for s in scopes)
        self._effective = frozenset().union(*(s.implied() for s in self.scopes))

    @classmethod
    def parse(
        cls, entries: Sequence[str], catalogue: ScopeCatalogue, *, field: str = "scopes"
    ) -> ScopeSet:
        """Validate user input against the grammar and the catalogue; all violations at once."""
        if not entries:
            raise InvalidArgument.field(
                field, "at least one scope is required", reason="SCOPE_INVALID"
            )

        def known(entry: str) -> Scope:
            scope = Scope.parse(entry)
            if scope not in catalogue:
                raise ValueError(f"unknown scope {scope}")
            return scope

        rules = EntryRules(
            known, MAX_SCOPES, "TOO_MANY_SCOPES", "SCOPE_INVALID", noun="scopes", echo=False
        )
        return cls(rules.parse(entries, field))

    def covers(self, required: Scope | str) -> bool:
        """Whether this set grants ``required`` directly or by implication."""
        return _as_scope(required) in self._effective

    def missing(self, requested: ScopeSet) -> list[Scope]:
        """The scopes of ``requested`` this set does not cover, sorted."""
        return sorted(s for s in requested.scopes if not self.covers(s))

    def entries(self) -> frozenset[Scope]:
        return self.scopes

    def as_strings(self) -> list[str]:
        return [str(s) for s in sorted(self.scopes)]

    def __iter__(self) -> Iterator[Scope]:
        return iter(sorted(self.scopes))

    def __len__(self) -> int:
        return len(self.scopes)


def ensure_within(requested: ScopeSet, ceiling: ScopeSet) -> None:
    """Refuse a key whose scopes exceed ``ceiling`` (its creator's rights)."""
    excess = ceiling.missing(requested)
    if excess:
        names = ", ".join(str(s) for s in excess)
        raise PermissionDenied(
            f"requested scopes exceed your own rights: {names}",
            reason="SCOPE_EXCEEDS_CREATOR",
            metadata={"scopes": names},
        )
