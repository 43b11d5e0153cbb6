"""The scope catalogue, read from the access rules of every generated contract.

Every ``*_pb2`` module under the ``railguard`` package is imported (at startup, in the composition
root) and each RPC whose rule names a scope contributes a :class:`ScopeGrant`. Adding an RPC with a
new scope to any contract adds the scope here with no change to the keys service.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType

import railguard
from servicekit.access import describe_services

from keys_service.domain import Role, ScopeGrant

__all__ = ["contract_modules", "scope_grants"]


def contract_modules() -> list[ModuleType]:
    """Every generated message module (``railguard.<service>.v1.*_pb2``)."""
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(railguard.__path__, "railguard.")
        if info.name.endswith("_pb2")
    ]


def scope_grants(modules: Iterable[ModuleType]) -> list[ScopeGrant]:
    return [
        ScopeGrant(info.rule.scope, Role(info.rule.min_role), info.full_method)
        for info in describe_services(modules)
        if info.rule is not None and info.rule.scope
    ]
