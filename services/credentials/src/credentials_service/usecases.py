"""Use cases of the credentials service: fetch → check → act → commit, primitives in and out.

Values are encrypted *before* the transaction that stores them, so a key-manager failure leaves
no row behind (fail closed). Roles are enforced by each RPC's access rule (the edge, and the
runtime's caller-identity interceptor as defence in depth); workspace isolation is enforced here:
every query is scoped to the workspace the caller was authorised for.

**Audit (DESIGN R16).** Every committed mutation records one event in the service's outbox in the
same transaction: ``credential.create|update|delete|undelete|use|purge`` and
``webhookTrigger.create|rotateToken|delete|deliver|purge``. An idempotent retry records nothing.
No event carries a value, a token, a ciphertext, a hash or a mask.

**Retention.** A deleted credential can be restored until its ``purge_at`` (``retention_days``
after the delete); a deleted trigger is kept as long. :class:`CredentialsRetention` then destroys
the secret material and keeps a tombstone. A purged item is NOT_FOUND with reason
``CREDENTIAL_PURGED`` / ``WEBHOOK_TRIGGER_PURGED`` to the members of its workspace (the only
callers who can name it) and can never be restored; a delivery to a purged trigger gets the one
``WEBHOOK_TRIGGER_NOT_FOUND`` answer like any bad token.

**Workspace life.** Every use case that acts in a workspace first asks the :class:`Gate` (what
this service has heard from the workspaces service, see ``servicekit.lifecycle``): once the
workspace is deleted it answers FAILED_PRECONDITION ``WORKSPACE_DELETED`` (NOT_FOUND
``WORKSPACE_NOT_FOUND`` once purged), ``UseCredential`` included. A delivery to a trigger of a
deleted or purged workspace gets the one ``WEBHOOK_TRIGGER_NOT_FOUND`` answer of an unknown
trigger, so the public hook route tells a caller nothing more than a wrong URL would.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from servicekit.audit import (
    AuditEvent,
    AuditMetadataError,
    AuditOrigin,
    check_metadata,
    format_time,
)
from servicekit.clock import Clock
from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RailguardError,
    Unavailable,
)
from servicekit.kms import KMS_UNAVAILABLE, KeyManager, parse_ciphertext
from servicekit.pagination import encode_token, page_request

from credentials_service.adapters.repository import CredentialsUnitOfWork, DuplicateRequest
from credentials_service.domain import (
    Credential,
    Delivery,
    SecretValue,
    TokenHasher,
    WebhookTrigger,
    check_value,
    credential_context,
    mask,
    new_token,
    parse_provider,
    trigger_not_found,
    trigger_purged,
    validate_display_name,
    webhook_context,
)

__all__ = [
    "UPDATABLE_FIELDS",
    "Actor",
    "CredentialsRetention",
    "CredentialsService",
    "RewrapReport",
]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PURPOSE = re.compile(r"^[\x20-\x7e]{0,200}$")
UPDATABLE_FIELDS = frozenset({"display_name", "value"})

_audit = logging.getLogger("credentials_service.audit")
_log = logging.getLogger("credentials_service")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, in which workspace: the edge-resolved principal, reduced to what matters here."""

    user_id: str
    workspace_id: str


class Gate(Protocol):
    """Whether a workspace may still be acted in (``servicekit.lifecycle.WorkspaceGate``)."""

    async def alive(self, workspace_id: str) -> bool: ...
    async def require_alive(self, workspace_id: str) -> None: ...


class Progress(Protocol):
    def __call__(self, kind: str, done: int, total: int) -> None: ...


@dataclass(slots=True)
class RewrapReport:
    """What a rewrap run did: the key version it rewrapped to and the rows it touched."""

    key_version: int
    rewrapped: int = 0
    skipped: int = 0
    failed: int = 0
    min_decryption_version: int = 0


def _credential_not_found() -> NotFound:
    return NotFound("credential not found", reason="CREDENTIAL_NOT_FOUND")


def _credential_purged() -> NotFound:
    return NotFound("credential was purged", reason="CREDENTIAL_PURGED")


def _no_origin() -> AuditOrigin:
    return AuditOrigin(actor="")


def _credential_name(c: Credential) -> str:
    return f"workspaces/{c.workspace_id}/credentials/{c.id}"


def _trigger_name(t: WebhookTrigger) -> str:
    return f"workspaces/{t.workspace_id}/webhookTriggers/{t.id}"


def _caller_text(value: str, limit: int = 200) -> str:
    """A caller-chosen string (purpose, content type) made safe as an audit metadata value: cut
    to ``limit``, and replaced when the audit library would take it for a secret."""
    value = value[:limit]
    try:
        check_metadata({"value": value})
    except AuditMetadataError:
        return "[redacted]"
    return value if value.isprintable() else "[redacted]"


def _check_request_id(request_id: str) -> str | None:
    if request_id and not _ID.match(request_id):
        raise InvalidArgument.field(
            "request_id", "must be 1-64 of [A-Za-z0-9_-]", reason="INVALID_REQUEST_ID"
        )
    return request_id or None


def _sealing_failed(exc: RailguardError) -> Unavailable:
    """Any key-manager refusal while sealing is a server-side fault: 503, nothing stored."""
    return Unavailable(
        "the key manager could not encrypt the value; nothing was stored",
        reason=exc.reason if exc.reason.startswith("KMS_") else KMS_UNAVAILABLE,
    )


def _opening_failed(exc: RailguardError) -> RailguardError:
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


class CredentialsService:
    def __init__(
        self,
        uow: Callable[[], CredentialsUnitOfWork],
        clock: Clock,
        kms: KeyManager,
        hasher: TokenHasher,
        *,
        gate: Gate,
        retention_days: int = 30,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        origin: Callable[[], AuditOrigin] = _no_origin,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        """``origin`` tells who acts and from where for audit events (the RPC context in
        production); ``after_commit`` runs once an audited change committed (it wakes the relay)."""
        self._uow, self._clock, self._kms, self._hasher = uow, clock, kms, hasher
        self._gate = gate
        self._retention_days, self._new_id = retention_days, new_id
        self._origin, self._after_commit = origin, after_commit

    async def _record(
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
        """Record ``action`` in the outbox, inside the caller's transaction.

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

    async def _seal(self, value: SecretValue, context: str) -> tuple[str, int]:
        try:
            ciphertext = await self._kms.encrypt(value.reveal().encode("utf-8"), context)
        except RailguardError as exc:
            failure = _sealing_failed(exc)
        else:
            return ciphertext, parse_ciphertext(ciphertext).version
        _log.warning("sealing failed", extra={"reason": failure.reason, "context": context})
        raise failure

    # -- credentials ------------------------------------------------------------------------

    async def create_credential(
        self,
        actor: Actor,
        display_name: str,
        provider_name: str,
        raw_value: str,
        request_id: str,
    ) -> Credential:
        await self._gate.require_alive(actor.workspace_id)
        name = validate_display_name(display_name, "credential.display_name")
        provider = parse_provider(provider_name)
        value = check_value(provider, raw_value)
        rid = _check_request_id(request_id)
        if rid:
            async with self._uow() as uow:
                existing = await uow.credentials.by_request_id(
                    actor.workspace_id, actor.user_id, rid
                )
            if existing is not None:
                return existing
        credential_id = self._new_id()
        ciphertext, version = await self._seal(
            value, credential_context(actor.workspace_id, credential_id)
        )
        now = self._clock.now()
        credential = Credential(
            id=credential_id,
            workspace_id=actor.workspace_id,
            display_name=name,
            provider=provider.name,
            masked_value=mask(provider, value),
            ciphertext=ciphertext,
            key_version=version,
            created_at=now,
            created_by=actor.user_id,
            updated_at=now,
            updated_by=actor.user_id,
        )
        try:
            async with self._uow() as uow:
                await uow.credentials.add(credential, rid)
                await self._record(
                    uow,
                    actor,
                    credential.workspace_id,
                    "credential.create",
                    _credential_name(credential),
                    {"provider": credential.provider, "key_version": str(version)},
                )
                await uow.commit()
        except DuplicateRequest:
            assert rid is not None
            async with self._uow() as uow:
                existing = await uow.credentials.by_request_id(
                    actor.workspace_id, actor.user_id, rid
                )
            if existing is None:
                raise
            return existing
        self._after_commit()
        _audit.info("credential.created", extra=_event(actor, credential))
        return credential

    async def get_credential(self, actor: Actor, credential_id: str) -> Credential:
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            credential = await uow.credentials.get(actor.workspace_id, credential_id)
        if credential is None:
            raise _credential_not_found()
        if credential.purged:
            raise _credential_purged()
        return credential

    async def list_credentials(
        self, actor: Actor, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[Credential], str]:
        query = f"credentials:{actor.workspace_id}:{show_deleted}"
        await self._gate.require_alive(actor.workspace_id)
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            rows = await uow.credentials.page(
                actor.workspace_id, page.cursor, page.size + 1, show_deleted=show_deleted
            )
        more = len(rows) > page.size
        rows = rows[: page.size]
        return rows, encode_token(rows[-1].id, query) if more and rows else ""

    async def update_credential(
        self, actor: Actor, credential_id: str, changes: Mapping[str, str]
    ) -> Credential:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown or not changes:
            raise InvalidArgument.field(
                "update_mask", "may name display_name and value only", reason="INVALID_UPDATE_MASK"
            )
        display_name = (
            validate_display_name(changes["display_name"], "credential.display_name")
            if "display_name" in changes
            else None
        )
        current = await self.get_credential(actor, credential_id)
        if current.deleted:
            raise FailedPrecondition("the credential is deleted", reason="CREDENTIAL_DELETED")
        sealed: tuple[str, int, str] | None = None
        if "value" in changes:
            provider = parse_provider(current.provider)
            value = check_value(provider, changes["value"])
            ciphertext, version = await self._seal(value, current.context)
            sealed = (ciphertext, version, mask(provider, value))
        async with self._uow() as uow:
            credential = await uow.credentials.get(actor.workspace_id, credential_id)
            if credential is None:
                raise _credential_not_found()
            if credential.deleted:
                raise FailedPrecondition("the credential is deleted", reason="CREDENTIAL_DELETED")
            if display_name is not None:
                credential.display_name = display_name
            if sealed is not None:
                credential.ciphertext, credential.key_version, credential.masked_value = sealed
            credential.updated_at, credential.updated_by = self._clock.now(), actor.user_id
            await uow.credentials.save(credential)
            await self._record(
                uow,
                actor,
                credential.workspace_id,
                "credential.update",
                _credential_name(credential),
                {"fields": ",".join(sorted(changes)), "key_version": str(credential.key_version)},
            )
            await uow.commit()
        self._after_commit()
        _audit.info(
            "credential.updated", extra={**_event(actor, credential), "fields": sorted(changes)}
        )
        return credential

    async def delete_credential(self, actor: Actor, credential_id: str) -> Credential:
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            credential = await uow.credentials.get(actor.workspace_id, credential_id)
            if credential is None:
                raise _credential_not_found()
            if credential.purged:
                raise _credential_purged()
            if credential.deleted:
                return credential
            now = self._clock.now()
            credential.deleted_at = now
            credential.purge_at = now + dt.timedelta(days=self._retention_days)
            credential.updated_at, credential.updated_by = now, actor.user_id
            await uow.credentials.save(credential)
            await self._record(
                uow,
                actor,
                credential.workspace_id,
                "credential.delete",
                _credential_name(credential),
                {"purge_time": format_time(credential.purge_at)},
            )
            await uow.commit()
        self._after_commit()
        _audit.info("credential.deleted", extra=_event(actor, credential))
        return credential

    async def undelete_credential(self, actor: Actor, credential_id: str) -> Credential:
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            credential = await uow.credentials.get(actor.workspace_id, credential_id, lock=True)
            if credential is None:
                raise _credential_not_found()
            if credential.purged:
                raise _credential_purged()
            if not credential.deleted:
                return credential
            now = self._clock.now()
            if credential.ciphertext is None or (
                credential.purge_at is not None and credential.purge_at <= now
            ):
                # the window has ended; the purge job just has not reached the credential yet
                raise FailedPrecondition(
                    "the credential's retention window has ended", reason="CREDENTIAL_PURGED"
                )
            credential.deleted_at = credential.purge_at = None
            credential.updated_at, credential.updated_by = now, actor.user_id
            await uow.credentials.save(credential)
            await self._record(
                uow,
                actor,
                credential.workspace_id,
                "credential.undelete",
                _credential_name(credential),
            )
            await uow.commit()
        self._after_commit()
        _audit.info("credential.undeleted", extra=_event(actor, credential))
        return credential

    async def use_credential(
        self, actor: Actor, caller: str, credential_id: str, purpose: str
    ) -> tuple[Credential, SecretValue]:
        """Decrypt for a runtime caller; record the use; log it without the value."""
        if not _PURPOSE.match(purpose):
            raise InvalidArgument.field(
                "purpose",
                "must be at most 200 printable ASCII characters",
                reason="INVALID_PURPOSE",
            )
        credential = await self.get_credential(actor, credential_id)
        if credential.deleted or credential.ciphertext is None:
            raise _credential_not_found()
        try:
            plaintext = await self._kms.decrypt(credential.ciphertext, credential.context)
        except RailguardError as exc:
            failure = _opening_failed(exc)
        else:
            now = self._clock.now()
            async with self._uow() as uow:
                stored = await uow.credentials.get(actor.workspace_id, credential_id)
                if stored is not None:
                    stored.last_used_at = now
                    await uow.credentials.save(stored)
                await self._record(
                    uow,
                    actor,
                    credential.workspace_id,
                    "credential.use",
                    _credential_name(credential),
                    {
                        "caller": caller[:64],
                        "purpose": _caller_text(purpose),
                        "key_version": str(credential.key_version),
                    },
                )
                await uow.commit()
            self._after_commit()
            credential.last_used_at = now
            _audit.info(
                "credential.used",
                extra={**_event(actor, credential), "caller": caller, "purpose": purpose},
            )
            return credential, SecretValue(plaintext.decode("utf-8"))
        _log.error(
            "credential could not be decrypted",
            extra={**_event(actor, credential), "caller": caller, "reason": failure.reason},
        )
        raise failure

    # -- webhook triggers --------------------------------------------------------------------

    async def _issue_token(
        self, workspace_id: str, trigger_id: str
    ) -> tuple[SecretValue, str, int, bytes]:
        token = new_token()
        ciphertext, version = await self._seal(token, webhook_context(workspace_id, trigger_id))
        return token, ciphertext, version, self._hasher.digest(token)

    async def create_trigger(
        self, actor: Actor, display_name: str, request_id: str
    ) -> tuple[WebhookTrigger, SecretValue | None]:
        await self._gate.require_alive(actor.workspace_id)
        name = validate_display_name(display_name, "webhook_trigger.display_name")
        rid = _check_request_id(request_id)
        if rid:
            async with self._uow() as uow:
                existing = await uow.triggers.by_request_id(actor.workspace_id, actor.user_id, rid)
            if existing is not None:
                return existing, None
        trigger_id = self._new_id()
        token, ciphertext, version, digest = await self._issue_token(actor.workspace_id, trigger_id)
        now = self._clock.now()
        trigger = WebhookTrigger(
            id=trigger_id,
            workspace_id=actor.workspace_id,
            display_name=name,
            token_ciphertext=ciphertext,
            key_version=version,
            token_hash=digest,
            created_at=now,
            created_by=actor.user_id,
            token_issued_at=now,
        )
        try:
            async with self._uow() as uow:
                await uow.triggers.add(trigger, rid)
                await self._record(
                    uow,
                    actor,
                    trigger.workspace_id,
                    "webhookTrigger.create",
                    _trigger_name(trigger),
                )
                await uow.commit()
        except DuplicateRequest:
            async with self._uow() as uow:
                existing = (
                    await uow.triggers.by_request_id(actor.workspace_id, actor.user_id, rid)
                    if rid
                    else None
                )
            if existing is None:
                raise
            return existing, None
        self._after_commit()
        _audit.info("webhook_trigger.created", extra=_trigger_event(actor, trigger))
        return trigger, token

    async def get_trigger(self, actor: Actor, trigger_id: str) -> WebhookTrigger:
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            trigger = await uow.triggers.get(actor.workspace_id, trigger_id)
        if trigger is None:
            raise trigger_not_found()
        if trigger.purged:
            raise trigger_purged()
        return trigger

    async def list_triggers(
        self, actor: Actor, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[WebhookTrigger], str]:
        query = f"triggers:{actor.workspace_id}:{show_deleted}"
        await self._gate.require_alive(actor.workspace_id)
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            rows = await uow.triggers.page(
                actor.workspace_id, page.cursor, page.size + 1, show_deleted=show_deleted
            )
        more = len(rows) > page.size
        rows = rows[: page.size]
        return rows, encode_token(rows[-1].id, query) if more and rows else ""

    async def rotate_trigger_token(
        self, actor: Actor, trigger_id: str
    ) -> tuple[WebhookTrigger, SecretValue]:
        current = await self.get_trigger(actor, trigger_id)
        if current.deleted:
            raise FailedPrecondition("the webhook trigger is deleted", reason="TRIGGER_DELETED")
        token, ciphertext, version, digest = await self._issue_token(actor.workspace_id, trigger_id)
        async with self._uow() as uow:
            trigger = await uow.triggers.get(actor.workspace_id, trigger_id)
            if trigger is None or trigger.deleted:
                raise trigger_not_found()
            trigger.token_ciphertext, trigger.key_version, trigger.token_hash = (
                ciphertext,
                version,
                digest,
            )
            trigger.token_issued_at = self._clock.now()
            await uow.triggers.save(trigger)
            await self._record(
                uow,
                actor,
                trigger.workspace_id,
                "webhookTrigger.rotateToken",
                _trigger_name(trigger),
                {"key_version": str(version)},
            )
            await uow.commit()
        self._after_commit()
        _audit.info("webhook_trigger.token_rotated", extra=_trigger_event(actor, trigger))
        return trigger, token

    async def delete_trigger(self, actor: Actor, trigger_id: str) -> WebhookTrigger:
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            trigger = await uow.triggers.get(actor.workspace_id, trigger_id)
            if trigger is None:
                raise trigger_not_found()
            if trigger.purged:
                raise trigger_purged()
            if trigger.deleted:
                return trigger
            now = self._clock.now()
            trigger.deleted_at = now
            await uow.triggers.save(trigger)
            purge_time = now + dt.timedelta(days=self._retention_days)
            await self._record(
                uow,
                actor,
                trigger.workspace_id,
                "webhookTrigger.delete",
                _trigger_name(trigger),
                {"purge_time": format_time(purge_time)},
            )
            await uow.commit()
        self._after_commit()
        _audit.info("webhook_trigger.deleted", extra=_trigger_event(actor, trigger))
        return trigger

    async def deliver(
        self, trigger_id: str, presented: str, size_bytes: int, content_type: str, source_ip: str
    ) -> Delivery:
        """Accept a delivery when the token is the trigger's current one; NOT_FOUND otherwise.

        Unknown trigger, deleted trigger, malformed token and wrong token take the same path
        (hash, one indexed lookup, constant-time compares) and raise the same error.
        """
        digest = self._hasher.lookup_digest(presented) or secrets.token_bytes(32)
        async with self._uow() as uow:
            trigger = await uow.triggers.by_token_hash(digest)
            if trigger is None or not trigger.matches(trigger_id, digest):
                raise trigger_not_found()
            if not await self._gate.alive(trigger.workspace_id):
                raise trigger_not_found()  # a dead workspace's hook: the unknown trigger's answer
            now = self._clock.now()
            delivery = Delivery(
                id=f"{int(now.timestamp() * 1_000_000):016x}{secrets.token_hex(8)}",
                workspace_id=trigger.workspace_id,
                trigger_id=trigger.id,
                received_at=now,
                size_bytes=max(0, size_bytes),
                content_type=content_type[:200],
                source_ip=source_ip[:64],
            )
            await uow.deliveries.add(delivery)
            trigger.last_delivery_at = now
            await uow.triggers.save(trigger)
            # the token holder acts; the edge's mTLS identity is not the actor
            await self._record(
                uow,
                f"webhookTrigger:{trigger.id}",
                trigger.workspace_id,
                "webhookTrigger.deliver",
                _trigger_name(trigger),
                {
                    "delivery_id": delivery.id,
                    "size_bytes": str(delivery.size_bytes),
                    "content_type": _caller_text(delivery.content_type),
                },
                client_ip=delivery.source_ip,
            )
            await uow.commit()
        self._after_commit()
        return delivery

    async def list_deliveries(
        self, actor: Actor, trigger_id: str, page_size: int, page_token: str
    ) -> tuple[list[Delivery], str]:
        query = f"deliveries:{actor.workspace_id}:{trigger_id}"
        page = page_request(page_size, page_token, query)
        await self.get_trigger(actor, trigger_id)
        async with self._uow() as uow:
            rows = await uow.deliveries.page(trigger_id, page.cursor, page.size + 1)
        more = len(rows) > page.size
        rows = rows[: page.size]
        return rows, encode_token(rows[-1].id, query) if more and rows else ""

    # -- key rotation ------------------------------------------------------------------------

    async def rewrap(
        self, *, batch_size: int = 100, rotate: bool = True, progress: Progress | None = None
    ) -> RewrapReport:
        """Rotate the key, re-seal every stored ciphertext under the new version, raise the floor.

        The plaintext never reaches this process (the key manager's rewrap). Rows are taken in
        id order, ``batch_size`` at a time, one transaction per batch, so an interrupted run loses
        at most one batch; run again with ``rotate=False`` to resume. A row that will not rewrap
        is counted and skipped; min_decryption_version is raised only when none is left behind.
        """
        if not 1 <= batch_size <= 1000:
            raise InvalidArgument.field("batch_size", "must be 1 to 1000")
        latest = await self._kms.rotate() if rotate else (await self._kms.key_info()).latest_version
        report = RewrapReport(latest)
        for kind in ("credentials", "webhook_triggers"):
            await self._rewrap_table(kind, latest, batch_size, report, progress)
        async with self._uow() as uow:
            left = await uow.credentials.count_stale(latest) + await uow.triggers.count_stale(
                latest
            )
        info = await self._kms.key_info()
        if left == 0 and info.min_decryption_version < latest:
            info = await self._kms.set_min_decryption_version(latest)
        report.min_decryption_version = info.min_decryption_version
        _audit.info(
            "credentials.rewrapped",
            extra={
                "key_version": latest,
                "rewrapped": report.rewrapped,
                "skipped": report.skipped,
                "failed": report.failed,
                "min_decryption_version": report.min_decryption_version,
            },
        )
        return report

    async def _rewrap_table(
        self,
        kind: str,
        latest: int,
        batch_size: int,
        report: RewrapReport,
        progress: Progress | None,
    ) -> None:
        async with self._uow() as uow:
            repo = uow.credentials if kind == "credentials" else uow.triggers
            total = await repo.count_stale(latest)
        done, cursor = 0, ""
        if progress:
            progress(kind, 0, total)
        while True:
            async with self._uow() as uow:
                repo = uow.credentials if kind == "credentials" else uow.triggers
                rows: list[tuple[str, str, str]] = [
                    (r.id, c, r.context)
                    for r in await repo.stale(latest, cursor, batch_size)
                    if (c := _ciphertext_of(r)) is not None
                ]
                if not rows:
                    break
                results = await self._rewrap_rows(rows)
                for (row_id, old, _), new in zip(rows, results, strict=True):
                    if new is None:
                        report.failed += 1
                    elif await repo.replace_ciphertext(
                        row_id, old, new, parse_ciphertext(new).version
                    ):
                        report.rewrapped += 1
                    else:
                        report.skipped += 1  # the value was replaced meanwhile
                await uow.commit()
            cursor = rows[-1][0]
            done += len(rows)
            if progress:
                progress(kind, min(done, total), total)

    async def _rewrap_rows(self, rows: list[tuple[str, str, str]]) -> list[str | None]:
        """Rewrap a batch; when the batch fails, retry item by item to isolate the bad rows."""
        try:
            return list(await self._kms.rewrap_batch([(c, ctx) for _, c, ctx in rows]))
        except Unavailable:
            raise
        except RailguardError as exc:
            _log.warning("rewrap batch failed; retrying row by row", extra={"reason": exc.reason})
        results: list[str | None] = []
        for row_id, ciphertext, context in rows:
            try:
                results.append(await self._kms.rewrap(ciphertext, context))
            except Unavailable:
                raise
            except RailguardError as exc:
                _log.error("row could not be rewrapped", extra={"id": row_id, "reason": exc.reason})
                results.append(None)
        return results


class CredentialsRetention:
    """The purge job: destroys the secret material of items whose retention window has ended.

    A credential is due at its ``purge_at`` (set at delete time, shown to users as
    ``purge_time``); a trigger ``retention_days`` after its delete. The ciphertext (and for a
    credential the mask, for a trigger the lookup hash) become NULL/empty; the row stays as a
    tombstone. Each item is purged in its own transaction, re-checked first, so a concurrent
    restore either wins or is refused. Needs no key manager: nothing is decrypted.
    """

    def __init__(
        self,
        uow: Callable[[], CredentialsUnitOfWork],
        clock: Clock,
        retention_days: int = 30,
        *,
        after_commit: Callable[[], None] = lambda: None,
        batch: int = 100,
    ) -> None:
        if retention_days < 1:
            raise ValueError("the retention window is at least one day")
        self._uow, self._clock = uow, clock
        self._retention = dt.timedelta(days=retention_days)
        self._after_commit, self._batch = after_commit, batch

    async def purge_expired(self) -> tuple[list[str], list[str]]:
        """Purge everything due now; the credential ids and trigger ids purged."""
        now = self._clock.now()
        credentials: list[str] = []
        after = ""
        while True:
            async with self._uow() as uow:
                due = await uow.credentials.purge_due(now, after, self._batch)
            if not due:
                break
            after = due[-1].id
            for c in due:
                if await self._purge_credential(c.workspace_id, c.id, now):
                    credentials.append(c.id)
        triggers: list[str] = []
        after = ""
        while True:
            async with self._uow() as uow:
                old = await uow.triggers.deleted_unpurged(now - self._retention, after, self._batch)
            if not old:
                break
            after = old[-1].id
            for t in old:
                if await self._purge_trigger(t.workspace_id, t.id, now):
                    triggers.append(t.id)
        if credentials or triggers:
            self._after_commit()
        return credentials, triggers

    async def _purge_credential(self, ws_id: str, credential_id: str, now: dt.datetime) -> bool:
        async with self._uow() as uow:
            credential = await uow.credentials.get(ws_id, credential_id, lock=True)
            if credential is None or not credential.purge_due(now):
                return False
            assert credential.deleted_at is not None
            credential.purge(now)
            await uow.credentials.save(credential)
            await uow.outbox.record(
                AuditEvent.new(
                    workspace_id=ws_id,
                    actor="system",
                    action="credential.purge",
                    target=_credential_name(credential),
                    time=now,
                    metadata={
                        "provider": credential.provider,
                        "delete_time": format_time(credential.deleted_at),
                    },
                )
            )
            await uow.commit()
        return True

    async def _purge_trigger(self, ws_id: str, trigger_id: str, now: dt.datetime) -> bool:
        async with self._uow() as uow:
            trigger = await uow.triggers.get(ws_id, trigger_id, lock=True)
            if trigger is None or not trigger.purge_due(now, self._retention):
                return False
            assert trigger.deleted_at is not None
            trigger.purge(now)
            await uow.triggers.save(trigger)
            await uow.outbox.record(
                AuditEvent.new(
                    workspace_id=ws_id,
                    actor="system",
                    action="webhookTrigger.purge",
                    target=_trigger_name(trigger),
                    time=now,
                    metadata={"delete_time": format_time(trigger.deleted_at)},
                )
            )
            await uow.commit()
        return True


def _ciphertext_of(row: Credential | WebhookTrigger) -> str | None:
    return row.ciphertext if isinstance(row, Credential) else row.token_ciphertext


def _event(actor: Actor, credential: Credential) -> dict[str, object]:
    return {
        "workspace_id": credential.workspace_id,
        "credential_id": credential.id,
        "actor": actor.user_id,
        "key_version": credential.key_version,
    }


def _trigger_event(actor: Actor, trigger: WebhookTrigger) -> dict[str, object]:
    return {"workspace_id": trigger.workspace_id, "trigger_id": trigger.id, "actor": actor.user_id}
