"""What every service's use cases are built on, in one value the composition root hands them.

A use-case class needs to open units of work (a read-only one for its hot reads), to tell the
time, to make ids, to say who acts for its audit events, and to wake the relays once a change
has committed. :class:`Collaborators` holds those; a service that needs more (its directory of
another service, its keys, its settings) holds one as ``shared`` in a dataclass of its own, so
the classes of every service are constructed the same way: ``KeysService(KeysDeps(shared, …))``,
with ``shared`` from :func:`servicekit.composition.serving_collaborators` in production.

This module is pure: no gRPC, no SQL, no service contract (domain and use-case code import it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from servicekit.audit import AuditOrigin
from servicekit.clock import Clock
from servicekit.ports import AuditedUnitOfWork

__all__ = ["Collaborators", "UserEvents", "new_hex_id", "no_origin", "nothing"]

# covariant: a unit of work is only ever returned, so Collaborators of a SQL unit of work is
# Collaborators of the port it implements
U = TypeVar("U", covariant=True)


def no_origin() -> AuditOrigin:
    """No caller: the origin of a job, or of a use case exercised outside an RPC."""
    return AuditOrigin(actor="")


def nothing() -> None:
    """The ``after_commit`` of a use case with no relay to wake."""


def new_hex_id() -> str:
    """A random 128-bit id, as 32 lower-case hex digits."""
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True, slots=True)
class Collaborators(Generic[U]):
    """How a use case reaches its storage, the clock, ids, its caller, and the relays.

    ``uow`` opens a unit of work of type ``U``; ``read_uow`` (default ``uow``) the read-only one
    of the hot reads (one statement, no transaction around it). ``origin`` says who acts and
    from where for audit events (the RPC context in production); ``after_commit`` is called once
    an audited change has committed (it wakes the outbox relays).
    """

    uow: Callable[[], U]
    clock: Clock
    origin: Callable[[], AuditOrigin] = no_origin
    after_commit: Callable[[], None] = nothing
    new_id: Callable[[], str] = new_hex_id
    read_uow: Callable[[], U] | None = None

    @property
    def reader(self) -> Callable[[], U]:
        """What opens a read-only unit of work: ``read_uow``, or ``uow`` when none was given."""
        return self.read_uow or self.uow


class UserEvents:
    """Records what a user did in a workspace, in the outbox of the caller's unit of work (so the
    event commits, or rolls back, with the change). ``origin`` tells from where the user acts
    (request id, client IP) for the RPC being served."""

    def __init__(self, origin: Callable[[], AuditOrigin], clock: Clock) -> None:
        self._origin, self._clock = origin, clock

    async def __call__(
        self,
        uow: AuditedUnitOfWork,
        user_id: str,
        workspace_id: str,
        action: str,
        target: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Record ``action`` of ``user_id`` on ``target`` (a resource name) in ``workspace_id``."""
        event = self._origin().event(
            on_behalf_of=f"user:{user_id}",
            workspace_id=workspace_id,
            action=action,
            target=target,
            time=self._clock.now(),
            metadata=metadata,
        )
        await uow.outbox.record(event)
