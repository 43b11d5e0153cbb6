"""Connection-level database failures are a retryable UNAVAILABLE; other errors stay unexpected."""

from __future__ import annotations

import pytest
from devstack import free_port
from servicekit import errors
from servicekit.db import create_engine
from servicekit.failures import DATABASE_UNAVAILABLE, unavailable_from
from sqlalchemy import exc as sa_exc
from sqlalchemy import text


async def _failure_of(url: str) -> BaseException:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - the failure is what the test inspects
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the connection unexpectedly succeeded")


async def test_a_refused_postgres_connection_is_database_unavailable() -> None:
    failure = await _failure_of(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
    mapped = unavailable_from(failure)
    assert isinstance(mapped, errors.Unavailable), repr(failure)
    assert mapped.reason == DATABASE_UNAVAILABLE
    assert mapped.retry_after == 1.0
    assert "127.0.0.1" not in mapped.message  # driver text never reaches a caller


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("reset"), connection_invalidated=True),
    ],
)
def test_sqlalchemy_connection_errors_map(exc: BaseException) -> None:
    mapped = unavailable_from(exc)
    assert mapped is not None and mapped.reason == DATABASE_UNAVAILABLE


def test_a_wrapped_outage_is_found_in_the_cause_chain() -> None:
    try:
        try:
            raise sa_exc.OperationalError("SELECT 1", {}, Exception("terminating connection"))
        except sa_exc.OperationalError as inner:
            raise RuntimeError("use case failed") from inner
    except RuntimeError as outer:
        mapped = unavailable_from(outer)
    assert mapped is not None and mapped.reason == DATABASE_UNAVAILABLE


def test_a_bare_socket_error_is_a_dependency_outage() -> None:
    mapped = unavailable_from(ConnectionRefusedError(111, "refused"))
    assert mapped is not None and mapped.reason == "DEPENDENCY_UNAVAILABLE"


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("bug"),
        KeyError("x"),
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sa_exc.ProgrammingError("SELEC", {}, Exception("syntax error")),
    ],
)
def test_programming_errors_stay_unexpected(exc: BaseException) -> None:
    assert unavailable_from(exc) is None
