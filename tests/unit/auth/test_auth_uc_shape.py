"""The use cases depend on the ports only: no module of ``auth_service.usecases`` imports an
adapter (SQL, argon2, KMS, gRPC clients)."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import auth_service.usecases
from auth_service import ports

from .fakes import FakeStore

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


async def test_the_fakes_have_every_method_of_the_ports() -> None:
    """The fakes keep step with ``auth_service.ports`` (the SQL side is held by mypy)."""
    checked = 0
    async with FakeStore().uow() as uow:
        for name, member in inspect.getmembers(ports.UnitOfWork):  # inherited outbox included
            if not isinstance(member, property) or member.fget is None:
                continue
            protocol = typing.get_type_hints(member.fget)["return"]
            fake = getattr(uow, name)
            checked += 1
            for method, signature in _methods(protocol).items():
                assert hasattr(fake, method), f"{type(fake).__name__} lacks {method}"
                params = list(inspect.signature(getattr(fake, method)).parameters)
                assert params == signature, f"{type(fake).__name__}.{method}: {params}"
    assert checked == 13  # every store, the audit outbox and the mail outbox


def _methods(protocol: type) -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(fn).parameters)[1:]
        for name, fn in vars(protocol).items()
        if inspect.iscoroutinefunction(fn) or (callable(fn) and not name.startswith("_"))
    }
