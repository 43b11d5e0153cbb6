"""The settings catalog is complete, used, and the README's table is generated from it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from servicekit.catalog import CATALOG, declared, render_table
from servicekit.settings import SECRET_SETTINGS, load_settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import settings_table  # noqa: E402

# a setting is read as get/get_int/get_float/seconds("NAME", …) on a Settings object
_READ = re.compile(r"\b(?:get|get_int|get_float|seconds)\(\s*\"([A-Z][A-Z0-9_]{2,})\"")


def _names_read_in_code() -> set[str]:
    names: set[str] = set()
    for tree in ("libs/servicekit", "services"):
        for path in (ROOT / tree).rglob("*.py"):
            names |= set(_READ.findall(path.read_text()))
    return names


def test_every_setting_the_code_reads_is_declared() -> None:
    undeclared = sorted(
        n for n in _names_read_in_code() if not declared(n) and not n.startswith("OTEL_")
    )
    assert undeclared == []


def test_every_declared_setting_is_read_somewhere() -> None:
    read = _names_read_in_code()
    unused = sorted(v.name for v in CATALOG if v.name not in read)
    assert unused == []


def test_names_are_unique() -> None:
    names = [v.name for v in CATALOG]
    assert len(names) == len(set(names))


def test_reading_an_undeclared_setting_is_refused() -> None:
    settings = load_settings("keys", {"RAILGUARD_KEYS_RETENTION_DAYS": "7"})
    assert settings.get_int("KEYS_RETENTION_DAYS", 30) == 7
    with pytest.raises(KeyError, match="RAILGUARD_KEYS_RETENTON_DAYS is not declared"):
        settings.get_int("KEYS_RETENTON_DAYS", 30)  # a typo must not silently give the default


def test_per_service_database_urls_are_declared() -> None:
    assert declared("AUTH_DATABASE_URL") and declared("CREDENTIALS_DATABASE_URL")
    assert not declared("DATABASE_URI") and not declared("_DATABASE_URL")


def test_secret_settings_come_from_the_catalog() -> None:
    assert set(SECRET_SETTINGS) == {v.name for v in CATALOG if v.secret}
    assert {"DATABASE_URL", "KEYS_PEPPERS", "AUTH_SIGNING_KEK"} <= set(SECRET_SETTINGS)


def test_readme_table_is_generated_from_the_catalog() -> None:
    text = (ROOT / "README.md").read_text()
    assert settings_table.rendered(text) == text, "run python scripts/settings_table.py"
    assert render_table().count("\n") == len(CATALOG) + 2
