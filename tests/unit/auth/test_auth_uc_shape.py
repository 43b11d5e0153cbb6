"""The use cases depend on the ports only: no module of ``auth_service.usecases`` imports an
adapter (SQL, argon2, KMS, gRPC clients)."""

from __future__ import annotations

import ast
from pathlib import Path

import auth_service.usecases

_PACKAGE = Path(auth_service.usecases.__file__).parent
_FORBIDDEN = ("auth_service.adapters", "sqlalchemy", "grpc", "railguard.")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_use_case_modules_import_no_adapter() -> None:
    modules = sorted(_PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for module in modules:
        bad = {n for n in _imports(module) if n.startswith(_FORBIDDEN)}
        assert not bad, f"{module.name} imports {sorted(bad)}"


def test_no_use_case_module_is_a_god_module() -> None:
    for module in _PACKAGE.glob("*.py"):
        lines = len(module.read_text().splitlines())
        assert lines <= 500, f"{module.name} has {lines} lines"
