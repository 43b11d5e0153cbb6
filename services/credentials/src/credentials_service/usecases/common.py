"""What every capability of the credentials use cases shares: the actor, the audit trail, sealing
under the key manager, and the checks of caller-chosen strings."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from servicekit.audit import AuditEvent, AuditMetadataError, check_metadata
from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    RailguardError,
    Unavailable,
)
from servicekit.kms import KMS_UNAVAILABLE, parse_ciphertext
from servicekit.usecase import Collaborators

from credentials_service.domain import SecretValue
from credentials_service.ports import CredentialsUnitOfWork, Gate, SealingKeyManager

__all__ = [
    "Actor",
    "AuditTrail",
    "Deps",
    "Sealer",
    "caller_text",
    "check_request_id",
    "opening_failed",
]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_log = logging.getLogger("credentials_service")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, in which workspace: the edge-resolved principal, reduced to what matters here."""

    user_id: str
    workspace_id: str


class AuditTrail:
    """Records audit events in the outbox of the caller's transaction, and wakes the relay once
    that transaction committed.

    ``shared`` gives the clock, who acts and from where (``origin``: the RPC context in
    production), and what runs once an audited change committed (``after_commit``).
    """

    def __init__(self, shared: Collaborators[CredentialsUnitOfWork]) -> None:
        self._clock, self._origin = shared.clock, shared.origin
        self._after_commit = shared.after_commit

    async def record(
        self,
        uow: CredentialsUnitOfWork,
        actor: Actor | str,
        workspace_id: str,
        action: str,
        target: str,
        metadata: Mapping[str, str] | None = None,
        *,
        client_ip: str | None = None,
    ) -> None:
        """Record ``action`` in the outbox, inside ``uow``'s transaction.

        ``actor`` is the acting user (the RPC's origin wins when there is one) or a fixed actor
        string such as ``webhookTrigger:<id>``.
        """
        origin = self._origin()
        if isinstance(actor, str):
            who = actor
        else:
            who = origin.actor or (f"user:{actor.user_id}" if actor.user_id else "system")
        await uow.outbox.record(
            AuditEvent.new(
                workspace_id=workspace_id,
                actor=who,
                action=action,
                target=target,
                time=self._clock.now(),
                request_id=origin.request_id,
                client_ip=(origin.client_ip if client_ip is None else client_ip)[:64],
                metadata=metadata,
            )
        )

    def committed(self) -> None:
        """An audited change committed: let the relay ship it."""
        self._after_commit()


def _sealing_failed(exc: RailguardError) -> Unavailable:
    """Any key-manager refusal while sealing is a server-side fault: 503, nothing stored."""
    return Unavailable(
        "the key manager could not encrypt the value; nothing was stored",
        reason=exc.reason if exc.reason.startswith("KMS_") else KMS_UNAVAILABLE,
    )


def opening_failed(exc: RailguardError) -> RailguardError:
    """A stored ciphertext that will not open: an outage (retry) or a refusal (never retry)."""
    if isinstance(exc, Unavailable):
        return exc
    if isinstance(exc, PermissionDenied) or exc.reason == "KMS_KEY_NOT_FOUND":
        return Unavailable("the key manager refused to decrypt the value", reason=exc.reason)
    return FailedPrecondition(
        "the stored value cannot be decrypted: its key version is retired, or the ciphertext "
        "does not belong to this record",
        reason=exc.reason,
    )


class Sealer:
    """Encrypts a secret under the latest key version, bound to its record's context.

    Values are sealed *before* the transaction that stores them, so a key-manager failure leaves
    no row behind (fail closed).
    """

    def __init__(self, kms: SealingKeyManager) -> None:
        self.kms = kms

    async def seal(self, value: SecretValue, context: str) -> tuple[str, int]:
        """The ciphertext and its key version; Unavailable (nothing stored) when sealing fails."""
        try:
            ciphertext = await self.kms.encrypt(value.reveal().encode("utf-8"), context)
        except RailguardError as exc:
            failure = _sealing_failed(exc)
        else:
            return ciphertext, parse_ciphertext(ciphertext).version
        _log.warning("sealing failed", extra={"reason": failure.reason, "context": context})
        raise failure


def caller_text(value: str, limit: int = 200) -> str:
    """A caller-chosen string (purpose, content type) made safe as an audit metadata value: cut
    to ``limit``, and replaced when the audit library would take it for a secret."""
    value = value[:limit]
    try:
        check_metadata({"value": value})
    except AuditMetadataError:
        return "[redacted]"
    return value if value.isprintable() else "[redacted]"


def check_request_id(request_id: str) -> str | None:
    """The idempotency key of a create, or None when the caller sent none."""
    if request_id and not _ID.match(request_id):
        raise InvalidArgument.field(
            "request_id", "must be 1-64 of [A-Za-z0-9_-]", reason="INVALID_REQUEST_ID"
        )
    return request_id or None


@dataclass(frozen=True, slots=True)
class Deps:
    """What every capability takes from the composition root: the collaborators every service's
    use cases have (``shared``: unit of work, clock, ids, audit origin, after-commit hook), the
    workspace gate and the retention window; ``audit`` is the trail built on ``shared``."""

    shared: Collaborators[CredentialsUnitOfWork]
    gate: Gate
    retention_days: int = 30
    audit: AuditTrail = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "audit", AuditTrail(self.shared))
