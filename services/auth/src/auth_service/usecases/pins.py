"""Deployment PINs: set, read and clear by workspace admins; verified by anyone for a short
deployment token, under per-IP, per-deployment×IP and per-deployment limits."""

from __future__ import annotations

import logging
import secrets

from servicekit.errors import ResourceExhausted

from auth_service.domain import DeploymentPin, check_pin, well_formed_pin
from auth_service.ports import UnitOfWork
from auth_service.usecases import errors
from auth_service.usecases.config import DeploymentToken
from auth_service.usecases.context import pin_name
from auth_service.usecases.tokens import SecretExchange

_log = logging.getLogger("auth_service")


class DeploymentPins(SecretExchange):
    async def set_deployment_pin(
        self, workspace_id: str, deployment_id: str, pin: str
    ) -> DeploymentPin:
        ctx = self._ctx
        hashed = await self._hasher.hash(check_pin(pin))
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            existing = await uow.pins.get(workspace_id, deployment_id)
            record = DeploymentPin(
                workspace_id,
                deployment_id,
                hashed,
                existing.created_at if existing else now,
                now,
            )
            await uow.pins.put(record)
            # A new PIN starts with a clean slate (the admin's way out of a throttled PIN).
            await uow.throttle.reset(
                self._throttling.pin_deployment(workspace_id, deployment_id).key
            )
            await self._commit_change(
                uow,
                "deploymentPin.set",
                workspace_id,
                deployment_id,
                replaced=str(existing is not None).lower(),
            )
        self._changed("deployment pin set", workspace_id, deployment_id)
        return record

    async def get_deployment_pin(self, workspace_id: str, deployment_id: str) -> DeploymentPin:
        async with self._ctx.uow() as uow:
            record = await uow.pins.get(workspace_id, deployment_id)
        if record is None:
            raise errors.pin_not_set()
        return record

    async def clear_deployment_pin(self, workspace_id: str, deployment_id: str) -> None:
        ctx = self._ctx
        async with ctx.uow() as uow:
            removed = await uow.pins.remove(workspace_id, deployment_id)
            if not removed:
                raise errors.pin_not_set()
            await self._commit_change(uow, "deploymentPin.clear", workspace_id, deployment_id)
        self._changed("deployment pin cleared", workspace_id, deployment_id)

    async def verify_deployment_pin(
        self, workspace_id: str, deployment_id: str, pin: str, client_ip: str = ""
    ) -> DeploymentToken:
        """A deployment token for the right PIN; an unknown deployment answers like a wrong PIN."""
        ctx, throttling = self._ctx, self._throttling
        buckets = [
            throttling.pin_ip(client_ip),
            throttling.pin_deployment_ip(workspace_id, deployment_id, client_ip),
            throttling.pin_deployment(workspace_id, deployment_id),
        ]
        try:
            await throttling.reserve(buckets, "PIN_THROTTLED")
        except ResourceExhausted:
            async with ctx.uow() as uow:
                known = await uow.pins.get(workspace_id, deployment_id)
            if known is not None:
                await self._audit_refusal(known, "PIN_THROTTLED", client_ip)
            raise
        async with ctx.uow() as uow:
            record = await uow.pins.get(workspace_id, deployment_id)
        candidate = pin if len(pin) <= 64 else pin[:64]
        if record is None or not well_formed_pin(pin):
            await self._hasher.verify_dummy(candidate)
            if record is not None:
                await self._audit_refusal(record, "INVALID_PIN", client_ip)
            raise errors.invalid_pin()
        if not await self._hasher.verify(record.pin_hash, candidate):
            await self._audit_refusal(record, "INVALID_PIN", client_ip)
            raise errors.invalid_pin()
        # A success gives back its own attempt but does not wipe the deployment's failures:
        # a PIN shared by many people must not let a guesser ride on their successes.
        await throttling.settle(refund=buckets)
        now = ctx.clock.now()
        ttl = int(self._config.deployment_token_ttl.total_seconds())
        iat = int(now.timestamp())
        claims: dict[str, object] = {
            "iss": self._config.issuer,
            "sub": f"workspaces/{workspace_id}/deployments/{deployment_id}",
            "aud": self._config.deployment_audience,
            "iat": iat,
            "nbf": iat,
            "exp": iat + ttl,
            "jti": secrets.token_urlsafe(16),
            "ws": workspace_id,
            "deployment": deployment_id,
        }
        return DeploymentToken(await self._issuer.sign(claims, "dep+jwt"), ttl)

    async def _commit_change(
        self, uow: UnitOfWork, action: str, workspace_id: str, deployment_id: str, **metadata: str
    ) -> None:
        """Audit an admin's change of a deployment's PIN (the admin is the actor) and commit."""
        await self._ctx.audit(
            uow,
            action,
            pin_name(workspace_id, deployment_id),
            actor=self._ctx.caller(),
            workspace_id=workspace_id,
            metadata={"deployment_id": deployment_id, **metadata},
        )
        await uow.commit()

    def _changed(self, message: str, workspace_id: str, deployment_id: str) -> None:
        """After the commit: wake the relay and log the change (the PIN never appears)."""
        self._ctx.after_commit()
        _log.info(message, extra={"workspace_id": workspace_id, "deployment_id": deployment_id})

    async def _audit_refusal(self, record: DeploymentPin, reason: str, client_ip: str) -> None:
        """A refused PIN of a deployment that has one (never for an unknown deployment: its
        ids are the caller's choice), at most one per deployment and reason per minute."""
        await self._ctx.audit_refusal(
            f"{record.workspace_id}/{record.deployment_id}",
            reason,
            "deploymentPin.verify",
            pin_name(record.workspace_id, record.deployment_id),
            actor=self._ctx.caller(),
            workspace_id=record.workspace_id,
            client_ip=client_ip,
            metadata={"deployment_id": record.deployment_id},
        )
