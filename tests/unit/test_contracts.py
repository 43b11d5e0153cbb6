"""Every RPC of every contract carries an access rule, and the rules are coherent."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import railguard
from railguard.access.v1 import access_pb2
from servicekit.access import describe_services


def _all_contract_modules() -> list[ModuleType]:
    modules = []
    for info in pkgutil.walk_packages(railguard.__path__, "railguard."):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(info.name)
            if module.DESCRIPTOR.services_by_name:
                modules.append(module)
    return modules


def test_contracts_are_discovered() -> None:
    names = {m.__name__ for m in _all_contract_modules()}
    assert "railguard.auth.v1.auth_service_pb2" in names
    assert "railguard.workspaces.v1.workspaces_service_pb2" in names


def test_every_rpc_has_an_access_rule() -> None:
    missing = [i.full_method for i in describe_services(_all_contract_modules()) if i.rule is None]
    assert missing == [], f"RPCs without (railguard.access.v1.rule): {missing}"


def test_rules_are_coherent() -> None:
    for info in describe_services(_all_contract_modules()):
        rule = info.rule
        assert rule is not None
        where = info.full_method
        if rule.internal_callers:
            assert not info.http, f"{where}: internal RPCs must have no HTTP route"
            assert not rule.public and not rule.scope, (
                f"{where}: internal RPCs are neither public nor key-callable"
            )
        else:
            assert info.http, f"{where}: external RPCs need a google.api.http route"
        if rule.public:
            assert rule.min_role == access_pb2.ROLE_UNSPECIFIED and not rule.scope, where
        if rule.scope:
            resource, _, action = rule.scope.partition(":")
            assert resource and action in {"read", "write"}, f"{where}: scope {rule.scope!r}"
