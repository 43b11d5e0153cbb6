"""The ports every service's use cases share: the unit of work (typing only, no SQL).

A service's use cases name their own unit of work as a Protocol that extends :class:`UnitOfWork`
with the repositories it offers (``keys: KeyRepository``, ``outbox: AuditOutboxPort``, ...); the
SQL class that implements it (a ``servicekit.db.SqlUnitOfWork``) lives in the service's adapters
under a distinct name (``Sql<Service>UnitOfWork``), and the unit tests pass fakes.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from servicekit.audit import AuditEvent

__all__ = ["AuditOutboxPort", "AuditedUnitOfWork", "ReadOnlyUnitOfWork", "UnitOfWork"]


class ReadOnlyUnitOfWork(Protocol):
    """One transaction that only reads: ``async with uow: ...``; leaving it rolls back."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class UnitOfWork(ReadOnlyUnitOfWork, Protocol):
    """One transaction over a service's repositories; rolls back unless committed."""

    async def commit(self) -> None: ...


class AuditOutboxPort(Protocol):
    """The service's audit outbox, bound to the unit of work's transaction."""

    async def record(self, event: AuditEvent) -> None: ...


class AuditedUnitOfWork(UnitOfWork, Protocol):
    """A unit of work whose audit events commit, or roll back, with its changes."""

    @property
    def outbox(self) -> AuditOutboxPort: ...
