"""Fixtures shared by the whole suite. PostgreSQL and Redis tests are required when CI=true."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from testkit import fresh_database, make_pki, postgres_admin_url, redis_url

_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _CI and not postgres_admin_url():
        raise pytest.UsageError(
            "CI=true but RAILGUARD_TEST_POSTGRES_URL is not set: PostgreSQL tests are required"
        )
    if _CI and not redis_url():
        raise pytest.UsageError(
            "CI=true but RAILGUARD_TEST_REDIS_URL is not set: Redis tests are required"
        )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev CA with every service identity (session-wide: certificates are slow to make)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _db_params() -> list[object]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_db_params())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on each backend: SQLite always, PostgreSQL when configured."""
    if request.param == "postgres" and not postgres_admin_url():
        pytest.skip("RAILGUARD_TEST_POSTGRES_URL not set")
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty PostgreSQL database, for what only PostgreSQL can show (concurrent writers)."""
    if not postgres_admin_url():
        pytest.skip("RAILGUARD_TEST_POSTGRES_URL not set")
    async with fresh_database("postgres", tmp_path) as url:
        yield url
