"""Recovery codes: one-time second factors, stored as peppered HMACs, shown once."""

from __future__ import annotations

import logging

from auth_service.domain import Assurance, new_recovery_codes, recovery_code_hash
from auth_service.usecases import errors
from auth_service.usecases.context import UseCaseContext
from auth_service.usecases.peppers import Peppers

_log = logging.getLogger("auth_service")


class RecoveryCodes:
    def __init__(self, ctx: UseCaseContext, peppers: Peppers) -> None:
        self._ctx, self._peppers = ctx, peppers

    def __repr__(self) -> str:
        return "RecoveryCodes()"

    async def new_set(self) -> tuple[list[str], list[str]]:
        """A fresh set of codes (to show once) and their hashes (to store)."""
        codes = new_recovery_codes()
        pepper = await self._peppers.recovery_codes()
        return codes, [recovery_code_hash(pepper, c.replace("-", "")) for c in codes]

    async def digest(self, folded: str) -> str:
        """The stored hash of a presented (folded) code."""
        return recovery_code_hash(await self._peppers.recovery_codes(), folded)

    async def regenerate_recovery_codes(self, user_id: str, assurance: Assurance) -> list[str]:
        ctx = self._ctx
        has_factor = await ctx.has_factor(user_id)
        if not has_factor:
            raise errors.mfa_not_enabled()
        ctx.require_step_up(assurance, has_factor)
        codes, hashes = await self.new_set()
        async with ctx.uow() as uow:
            await uow.recovery_codes.replace(user_id, hashes, ctx.clock.now(), ctx.new_id)
            await ctx.audit_self(
                uow,
                "recoveryCodes.regenerate",
                user_id,
                metadata={"count": str(len(codes))},
            )
            await uow.commit()
        ctx.after_commit()
        _log.info("recovery codes regenerated", extra={"user_id": user_id})
        return codes
