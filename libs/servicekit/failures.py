"""Which exceptions mean "a dependency is down": the one place that turns them into ``Unavailable``.

A use case never catches a lost database connection itself. The error-mapping interceptor asks
:func:`unavailable_from` about any exception that is not a domain error; a connection-level
failure of the database (SQLAlchemy ``OperationalError``/``InterfaceError``/``DisconnectionError``,
a pool timeout, a DBAPI error that invalidated its connection, asyncpg's connection errors, a
refused or reset socket) becomes ``Unavailable(reason="DATABASE_UNAVAILABLE")`` with a
one-second retry delay (a bare socket error or timeout from elsewhere: ``DEPENDENCY_UNAVAILABLE``), which the edge answers as ``503`` with ``Retry-After: 1``. Anything else
stays an unexpected error (``INTERNAL``, traceback to the log).

The checks look the libraries up in ``sys.modules`` instead of importing them, so a process that
never loaded SQLAlchemy (the edge) does not pay for it here.
"""

from __future__ import annotations

import sys

from servicekit import errors

__all__ = ["DATABASE_RETRY_SECONDS", "DATABASE_UNAVAILABLE", "unavailable_from"]

DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
DATABASE_RETRY_SECONDS = 1.0

# asyncpg's connection-level errors, by class name (its hierarchy has no single base for them)
_ASYNCPG_CONNECTION_ERRORS = frozenset(
    {
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "ConnectionRejectionError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
        "OperatorInterventionError",
        "InterfaceError",
        "InternalClientError",
    }
)


def _is_sqlalchemy_outage(exc: BaseException) -> bool:
    sa = sys.modules.get("sqlalchemy.exc")
    if sa is None:
        return False
    if isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.DisconnectionError):
        return True
    if isinstance(exc, sa.TimeoutError):  # QueuePool: no connection within pool_timeout
        return True
    return isinstance(exc, sa.DBAPIError) and bool(exc.connection_invalidated)


def _is_asyncpg_outage(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    if not module.startswith("asyncpg"):
        return False
    return any(cls.__name__ in _ASYNCPG_CONNECTION_ERRORS for cls in type(exc).__mro__)


def _is_socket_outage(exc: BaseException) -> bool:
    # ConnectionError covers refused/reset/aborted; TimeoutError covers asyncio.TimeoutError too
    return isinstance(exc, ConnectionError | TimeoutError)


def _raised_in_database_driver(exc: BaseException) -> bool:
    """A socket error raised from inside SQLAlchemy or a driver is the database's (connect refused)."""
    tb = exc.__traceback__
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name.startswith(("sqlalchemy", "asyncpg", "aiosqlite")):
            return True
        tb = tb.tb_next
    return False


def _chain(exc: BaseException, depth: int = 8) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < depth and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def unavailable_from(exc: BaseException) -> errors.Unavailable | None:
    """``Unavailable`` (retry in 1 s) for a connection-level failure, else None.

    ``DATABASE_UNAVAILABLE`` when the database driver says so; ``DEPENDENCY_UNAVAILABLE`` for a
    bare refused/reset socket or timeout from anything else.

    The exception's cause chain is searched, so a failure wrapped by a library still counts.
    The message is generic: a driver's text can carry host names or SQL.
    """
    chain = _chain(exc)
    if any(
        _is_sqlalchemy_outage(link)
        or _is_asyncpg_outage(link)
        or (_is_socket_outage(link) and _raised_in_database_driver(link))
        for link in chain
    ):
        return errors.Unavailable(
            "the database is unavailable; retry later",
            reason=DATABASE_UNAVAILABLE,
            retry_after=DATABASE_RETRY_SECONDS,
        )
    if any(_is_socket_outage(link) for link in chain):
        return errors.Unavailable(
            "a dependency is unavailable; retry later",
            reason="DEPENDENCY_UNAVAILABLE",
            retry_after=DATABASE_RETRY_SECONDS,
        )
    return None
