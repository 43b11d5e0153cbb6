"""Named service secrets (HMAC peppers): 256 random bits each, sealed by the key manager,
made once by whichever replica first needs them, and cached in memory after."""

from __future__ import annotations

import secrets

from servicekit.clock import Clock

from auth_service.ports import Sealer, UnitOfWorkFactory

_RECOVERY_NAME = "recovery-code-pepper"
_RECOVERY_CONTEXT = "auth/recovery-code-pepper"
_TOKEN_NAME = "account-token-pepper"  # noqa: S105 - a secret's name
_TOKEN_CONTEXT = "auth/account-token-pepper"  # noqa: S105 - a context


class Peppers:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, sealer: Sealer) -> None:
        self._uow, self._clock, self._sealer = uow, clock, sealer
        self._cache: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "Peppers()"

    async def recovery_codes(self) -> bytes:
        """The recovery-code HMAC key."""
        return await self._sealed_secret(_RECOVERY_NAME, _RECOVERY_CONTEXT)

    async def account_tokens(self) -> bytes:
        """The HMAC key of mailed account tokens."""
        return await self._sealed_secret(_TOKEN_NAME, _TOKEN_CONTEXT)

    async def _sealed_secret(self, name: str, context: str) -> bytes:
        if name in self._cache:
            return self._cache[name]
        async with self._uow() as uow:
            sealed = await uow.secrets.get(name)
        if sealed is None:
            candidate = await self._sealer.encrypt(secrets.token_bytes(32), context)
            async with self._uow() as uow:
                await uow.secrets.add_if_absent(name, candidate, self._clock.now())
                await uow.commit()
            async with self._uow() as uow:
                sealed = await uow.secrets.get(name)
            assert sealed is not None
        self._cache[name] = await self._sealer.decrypt(sealed, context)
        return self._cache[name]
