"""The credentials service keeps its shape: use cases and ports depend on no adapter, no SQL and
no gRPC; the domain depends on nothing but itself and ``servicekit.errors``."""

from __future__ import annotations

import ast
from pathlib import Path

import credentials_service
import pytest

PACKAGE = Path(credentials_service.__file__).parent
FORBIDDEN = ("credentials_service.adapters", "sqlalchemy", "grpc", "railguard.")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


LAYERED = sorted([PACKAGE / "ports.py", *(PACKAGE / "usecases").glob("*.py")])


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: p.name)
def test_use_cases_and_ports_import_no_adapter(path: Path) -> None:
    bad = sorted(m for m in imports(path) if m.startswith(FORBIDDEN))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "domain").glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_only_itself_and_domain_errors(path: Path) -> None:
    ours = ("servicekit", "credentials_service")
    allowed = ("credentials_service.domain", "servicekit.errors")
    bad = sorted(
        m
        for m in imports(path)
        if m.startswith(FORBIDDEN) or (m.startswith(ours) and not m.startswith(allowed))
    )
    assert bad == [], f"{path.name} imports {bad}"


def test_the_use_cases_are_split_below_500_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in LAYERED}
    assert max(sizes.values()) <= 500, sizes
