"""Which scopes a workspace role may put on a key: the ceiling behind "never exceed the creator".

The input is the access rules of every contract, one :class:`ScopeGrant` per RPC that carries a
scope (``rule.scope``, ``rule.min_role``, the method). From them:

* the **catalogue** is every scope some RPC names; anything else is a typo or a guess;
* a role's **rights** are the scopes of the RPCs that role may call. A scope is within a role's
  rights when *at least one* RPC it grants is open to that role (``keys:write`` is a User right
  because a User may create keys). That can never widen a key beyond its creator: the edge checks
  every RPC's ``min_role`` against the creator's *current* role on every key request as well, so a
  key is bounded by both its scopes and its creator's role, and a demoted creator demotes the key.

:class:`Role` is ``servicekit.roles.Role`` (the numbers of ``railguard.access.v1.Role``), so the
domain needs no proto.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from servicekit.roles import Role

from .scopes import Scope, ScopeCatalogue, ScopeSet

__all__ = ["Role", "ScopeGrant", "ScopePolicy", "ScopeRule"]


@dataclass(frozen=True, slots=True)
class ScopeGrant:
    """One RPC's access rule, reduced to what scopes care about."""

    scope: str
    min_role: Role
    method: str


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """A scope, the lowest role that may hold it, and the RPCs it grants."""

    scope: Scope
    min_role: Role
    methods: tuple[str, ...]

    @property
    def implies(self) -> tuple[Scope, ...]:
        return tuple(sorted(self.scope.implied() - {self.scope}))


class ScopePolicy:
    """The scope catalogue with the role needed for each scope."""

    __slots__ = ("_rules", "catalogue")

    def __init__(self, grants: Iterable[ScopeGrant]) -> None:
        roles: dict[Scope, Role] = {}
        methods: dict[Scope, list[str]] = {}
        for grant in grants:
            scope = Scope.parse(grant.scope)
            roles[scope] = min(roles.get(scope, grant.min_role), grant.min_role)
            methods.setdefault(scope, []).append(grant.method)
        self._rules = tuple(
            ScopeRule(scope, roles[scope], tuple(sorted(methods[scope]))) for scope in sorted(roles)
        )
        self.catalogue = ScopeCatalogue(roles)

    @property
    def rules(self) -> tuple[ScopeRule, ...]:
        return self._rules

    def rights_of(self, role: Role | int) -> ScopeSet:
        """Every scope ``role`` may hold; nothing for a non-member."""
        if role <= Role.NONE:
            return ScopeSet()
        return ScopeSet(rule.scope for rule in self._rules if rule.min_role <= role)
