"""Webhook deliveries: accepting one on the public hook route, and listing a trigger's.

A delivery is accepted only with the trigger's current token. Unknown trigger, deleted or purged
trigger, a dead workspace's trigger, malformed token and wrong token take the same path (hash,
one indexed lookup, constant-time compares) and get the same ``WEBHOOK_TRIGGER_NOT_FOUND``, so
the route tells a caller nothing more than a wrong URL would. Audit: ``webhookTrigger.deliver``,
acted by the token holder (``webhookTrigger:<id>``), never the edge's identity.
"""

from __future__ import annotations

import secrets

from servicekit.pagination import fetch_page

from credentials_service.domain import Delivery, TokenHasher, trigger_not_found
from credentials_service.usecases.common import Actor, Deps, caller_text
from credentials_service.usecases.webhooks import WebhookTriggerUseCases

__all__ = ["DeliveryUseCases"]


class DeliveryUseCases:
    def __init__(self, deps: Deps, hasher: TokenHasher, triggers: WebhookTriggerUseCases) -> None:
        """``triggers`` answers whether the caller may see the trigger whose deliveries it lists."""
        self._uow, self._clock, self._gate, self._audit = (
            deps.shared.uow,
            deps.shared.clock,
            deps.gate,
            deps.audit,
        )
        self._hasher, self._triggers = hasher, triggers

    async def deliver(
        self, trigger_id: str, presented: str, size_bytes: int, content_type: str, source_ip: str
    ) -> Delivery:
        """Accept a delivery when the token is the trigger's current one; NOT_FOUND otherwise."""
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
            await self._triggers.lifecycle.record(
                uow,
                f"webhookTrigger:{trigger.id}",
                trigger,
                "webhookTrigger.deliver",
                {
                    "delivery_id": delivery.id,
                    "size_bytes": str(delivery.size_bytes),
                    "content_type": caller_text(delivery.content_type),
                },
                client_ip=delivery.source_ip,
            )
            await uow.commit()
        self._audit.committed()
        return delivery

    async def list(
        self, actor: Actor, trigger_id: str, page_size: int, page_token: str
    ) -> tuple[list[Delivery], str]:
        """A trigger's deliveries, newest first; the trigger must be visible to the caller."""

        async def read(before: str, limit: int) -> list[Delivery]:
            await self._triggers.get(actor, trigger_id)
            async with self._uow() as uow:
                return await uow.deliveries.page(trigger_id, before, limit)

        query = f"deliveries:{actor.workspace_id}:{trigger_id}"
        return await fetch_page(page_size, page_token, query, read, lambda d: d.id)
