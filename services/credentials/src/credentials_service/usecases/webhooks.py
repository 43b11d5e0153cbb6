"""Webhook triggers: create (the token shown once), read, rotate the token, delete.

A token is stored sealed by the key manager (DESIGN R3) and as a keyed hash, the column a
delivery is looked up by (``deliveries.py``). Audit: ``webhookTrigger.create|rotateToken|delete``
(``webhookTrigger.purge`` from the retention job); no event carries a token or a hash.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

from servicekit.audit import AuditAction
from servicekit.errors import FailedPrecondition, NotFound, RailguardError

from credentials_service.domain import (
    SecretValue,
    TokenHasher,
    WebhookTrigger,
    new_token,
    trigger_not_found,
    trigger_purged,
    validate_display_name,
    webhook_context,
)
from credentials_service.ports import (
    CredentialsUnitOfWork,
    SealingKeyManager,
    WebhookTriggerRepository,
)
from credentials_service.usecases.common import Actor, Deps, Sealer, check_request_id
from credentials_service.usecases.lifecycle import LifecycleUseCases, PurgeScan, ResourceKind

__all__ = ["TRIGGERS", "TriggerKind", "WebhookTriggerUseCases"]

_audit = logging.getLogger("credentials_service.audit")

IssuedToken = tuple[SecretValue, str, int, bytes]
"""A new token, sealed before its transaction: the token, ciphertext, key version, lookup hash."""


class TriggerKind(ResourceKind[WebhookTrigger]):
    create_action = AuditAction.WEBHOOK_TRIGGER_CREATE
    delete_action = AuditAction.WEBHOOK_TRIGGER_DELETE
    purge_action = AuditAction.WEBHOOK_TRIGGER_PURGE
    log_noun = "webhook_trigger"
    collection = "webhookTriggers"
    table = "webhook_triggers"
    listing = "triggers"

    def repository(self, uow: CredentialsUnitOfWork) -> WebhookTriggerRepository:
        return uow.triggers

    def not_found(self) -> NotFound:
        return trigger_not_found()

    def purged(self) -> NotFound:
        return trigger_purged()

    def deleted(self) -> FailedPrecondition:
        return FailedPrecondition("the webhook trigger is deleted", reason="TRIGGER_DELETED")

    def vanished(self, item: WebhookTrigger | None) -> RailguardError:
        return trigger_not_found()

    def mark_deleted(
        self, item: WebhookTrigger, now: dt.datetime, purge_at: dt.datetime, by: str
    ) -> None:
        item.mark_deleted(now)  # its window is counted from deleted_at when the job runs

    def log_fields(self, actor: Actor, item: WebhookTrigger) -> dict[str, object]:
        return {"workspace_id": item.workspace_id, "trigger_id": item.id, "actor": actor.user_id}

    async def purge_candidates(
        self, uow: CredentialsUnitOfWork, scan: PurgeScan
    ) -> list[WebhookTrigger]:
        # a trigger's window is counted from its delete, with today's retention
        return await uow.triggers.deleted_unpurged(
            scan.now - scan.retention, scan.after, scan.limit
        )

    def purge_due(self, item: WebhookTrigger, scan: PurgeScan) -> bool:
        return item.purge_due(scan.now, scan.retention)


TRIGGERS: Final = TriggerKind()


class WebhookTriggerUseCases(LifecycleUseCases[WebhookTrigger]):
    """The webhook-trigger RPCs a workspace's admins call (deliveries are ``deliveries.py``)."""

    def __init__(self, deps: Deps, kms: SealingKeyManager, hasher: TokenHasher) -> None:
        super().__init__(TRIGGERS, deps)
        self._clock, self._gate, self._new_id = deps.shared.clock, deps.gate, deps.shared.new_id
        self._sealer, self._hasher = Sealer(kms), hasher

    async def _issue_token(self, workspace_id: str, trigger_id: str) -> IssuedToken:
        token = new_token()
        ciphertext, version = await self._sealer.seal(
            token, webhook_context(workspace_id, trigger_id)
        )
        return token, ciphertext, version, self._hasher.digest(token)

    async def create(
        self, actor: Actor, display_name: str, request_id: str
    ) -> tuple[WebhookTrigger, SecretValue | None]:
        """A new trigger and its token; a retry with the same ``request_id`` returns the first
        trigger without a token (it is shown once) and records nothing."""
        await self._gate.require_alive(actor.workspace_id)
        name = validate_display_name(display_name, "webhook_trigger.display_name")
        rid = check_request_id(request_id)
        existing = await self.lifecycle.existing(actor, rid)
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
        stored, created = await self.lifecycle.add(actor, trigger, rid)
        return stored, token if created else None

    async def rotate_token(
        self, actor: Actor, trigger_id: str
    ) -> tuple[WebhookTrigger, SecretValue]:
        """A new token replaces the old one at once; the old one is refused from then on."""

        async def issue(current: WebhookTrigger) -> IssuedToken:
            return await self._issue_token(actor.workspace_id, trigger_id)

        def apply(trigger: WebhookTrigger, token: IssuedToken) -> dict[str, str]:
            _, ciphertext, version, digest = token
            trigger.token_ciphertext, trigger.key_version, trigger.token_hash = (
                ciphertext,
                version,
                digest,
            )
            trigger.token_issued_at = self._clock.now()
            return {"key_version": str(version)}

        trigger, (token, *_) = await self.lifecycle.edit(
            actor, trigger_id, issue, apply, "webhookTrigger.rotateToken"
        )
        _audit.info("webhook_trigger.token_rotated", extra=TRIGGERS.log_fields(actor, trigger))
        return trigger, token
