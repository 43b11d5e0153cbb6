"""The audit outbox as a use case sees it: a port that records an event in the transaction of
the unit of work it belongs to, and the unit of work that has one.

Each service's unit of work records its changes' audit events this way (the relay ships them
once committed); a service's own unit of work extends :class:`AuditedUnitOfWork` with its
repositories, and its SQL one implements ``outbox`` with a ``servicekit.outbox.OutboxRepository``.
"""

from __future__ import annotations

from typing import Protocol

from servicekit.audit import AuditEvent
from servicekit.ports import UnitOfWork

__all__ = ["AuditOutboxPort", "AuditedUnitOfWork"]


class AuditOutboxPort(Protocol):
    """The service's audit outbox, bound to the unit of work's transaction."""

    async def record(self, event: AuditEvent) -> None: ...


class AuditedUnitOfWork(UnitOfWork, Protocol):
    """A unit of work whose audit events commit, or roll back, with its changes."""

    @property
    def outbox(self) -> AuditOutboxPort: ...
