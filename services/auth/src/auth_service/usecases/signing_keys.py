"""JWT signing keys: the published set (JWKS) and its rotation (current → retired, next →
current, a new next), on schedule or at once."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace

from servicekit.metadata import joined

from auth_service.domain import (
    KeyState,
    RotationPlan,
    RotationPolicy,
    SigningKey,
    plan_rotation,
    thumbprint_kid,
)
from auth_service.ports import Sealer, TokenSigner
from auth_service.usecases.context import UseCaseContext
from auth_service.usecases.tokens import TokenIssuer, signing_context

_log = logging.getLogger("auth_service")


class SigningKeys:
    def __init__(
        self, ctx: UseCaseContext, sealer: Sealer, signer: TokenSigner, issuer: TokenIssuer
    ) -> None:
        self._ctx, self._sealer, self._signer, self._issuer = ctx, sealer, signer, issuer
        self._config = ctx.config

    def __repr__(self) -> str:
        return "SigningKeys()"

    async def jwks(self) -> str:
        now = self._ctx.clock.now()
        async with self._ctx.read_uow() as uow:
            keys = await uow.signing_keys.all()
        order = {KeyState.CURRENT: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
        published = sorted((k for k in keys if k.published(now)), key=lambda k: order[k.state])
        return json.dumps({"keys": [k.public_jwk() for k in published]}, separators=(",", ":"))

    async def rotate_signing_keys(
        self, now: dt.datetime | None = None, *, policy: RotationPolicy | None = None
    ) -> RotationPlan:
        """Bring the key set in line with the rotation policy; safe to run at any time."""
        ctx = self._ctx
        now = now or ctx.clock.now()
        async with ctx.uow() as uow:
            keys = {k.kid: k for k in await uow.signing_keys.all()}
            plan = plan_rotation(list(keys.values()), now, policy or self._config.rotation)
            if plan.empty:
                return plan
            for kid in plan.drop:
                await uow.signing_keys.remove(kid)
                self._issuer.forget(kid)
            for kid in plan.retire:
                key = keys[kid]
                key.state, key.retired_at = KeyState.RETIRED, now
                key.verify_until = now + self._config.rotation.verify_overlap
                await uow.signing_keys.save(key)
            if plan.promote:
                key = keys[plan.promote]
                key.state, key.activated_at = KeyState.CURRENT, now
                await uow.signing_keys.save(key)
            created: list[str] = []
            if plan.create_current:
                await uow.signing_keys.add(await self._new_key(KeyState.CURRENT, now))
                created.append(KeyState.CURRENT.value)
            if plan.create_next:
                await uow.signing_keys.add(await self._new_key(KeyState.NEXT, now))
                created.append(KeyState.NEXT.value)
            await ctx.audit(
                uow,
                "signingKey.rotate",
                "signingKeys",
                actor="system",
                metadata={
                    "promoted_kid": plan.promote or "",
                    "retired": joined(plan.retire),
                    "dropped": joined(plan.drop),
                    "created": ",".join(created),
                },
            )
            await uow.commit()
        ctx.after_commit()
        _log.info(
            "signing keys rotated",
            extra={
                "promoted": plan.promote or "",
                "retired": list(plan.retire),
                "dropped": list(plan.drop),
            },
        )
        return plan

    async def rotate_signing_key_now(
        self, *, immediate: bool = False, now: dt.datetime | None = None
    ) -> RotationPlan:
        """Rotate now rather than at the end of the interval: the published next key signs from
        now on, the current one is retired (it keeps verifying for the usual overlap) and a new
        next key is published. The next key must have been published for the JWKS cache time
        (verifiers have it) unless ``immediate`` (a compromised key: verifiers refetch on the
        unknown kid). An empty plan means nothing was ready to promote."""
        rotation = self._config.rotation
        policy = replace(
            rotation,
            interval=dt.timedelta(0),
            jwks_cache=dt.timedelta(0) if immediate else rotation.jwks_cache,
        )
        return await self.rotate_signing_keys(now, policy=policy)

    async def _new_key(self, state: KeyState, now: dt.datetime) -> SigningKey:
        public, private = self._signer.generate()
        kid = thumbprint_kid(public)
        sealed = await self._sealer.encrypt(private, signing_context(kid))
        return SigningKey(
            kid=kid,
            state=state,
            public_key=public,
            sealed_private_key=sealed,
            created_at=now,
            activated_at=now if state is KeyState.CURRENT else None,
        )
