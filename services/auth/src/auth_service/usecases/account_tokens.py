"""Mailed single-use tokens (email verification, email change, password reset): minted before
the transaction that stores them (the pepper may have to be made), stored as peppered hashes,
presented under a per-IP throttle."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from auth_service.domain.account_token import (
    AccountToken,
    account_token_hash,
    account_token_well_formed,
    new_account_token,
)
from auth_service.ports import UnitOfWork
from auth_service.usecases import errors
from auth_service.usecases.context import UseCaseContext
from auth_service.usecases.peppers import Peppers
from auth_service.usecases.throttling import Throttling


class AccountTokens:
    def __init__(self, ctx: UseCaseContext, peppers: Peppers, throttling: Throttling) -> None:
        self._ctx, self._peppers, self._throttling = ctx, peppers, throttling

    def __repr__(self) -> str:
        return "AccountTokens()"

    async def digest(self, purpose: str, token: str) -> str:
        return account_token_hash(await self._peppers.account_tokens(), purpose, token)

    async def mint(self, purpose: str) -> tuple[str, str]:
        """A new token and its stored hash (before any transaction: the pepper may be made)."""
        token = new_account_token()
        return token, await self.digest(purpose, token)

    async def store(
        self,
        uow: UnitOfWork,
        purpose: str,
        digest: str,
        user_id: str,
        email: str,
        ttl: dt.timedelta,
    ) -> str:
        """Store a minted token (superseding the user's live ones for ``purpose``); its id."""
        now = self._ctx.clock.now()
        token_id = self._ctx.new_id()
        await uow.tokens.retire(user_id, (purpose,), now)
        await uow.tokens.add(
            AccountToken(token_id, purpose, user_id, digest, email, now, now + ttl)
        )
        return token_id

    async def store_and_mail(
        self,
        uow: UnitOfWork,
        purpose: str,
        minted: tuple[str, str],
        user_id: str,
        email: str,
        ttl: dt.timedelta,
        template: str,
        mail: Callable[[str, str, dt.timedelta], tuple[str, str]],
    ) -> str:
        """Store a minted token and queue the mail of its link in the same transaction; its id.

        The token itself goes only into the mail, never into the store.
        """
        token, digest = minted
        token_id = await self.store(uow, purpose, digest, user_id, email, ttl)
        await self._ctx.send(uow, email, template, mail(self._ctx.config.public_url, token, ttl))
        return token_id

    async def live(self, purpose: str, token: str, client_ip: str) -> AccountToken:
        """The usable token, counted against the client IP; one error for every failure."""
        await self._throttling.reserve([self._throttling.token_ip(client_ip)], "TOKEN_THROTTLED")
        if not account_token_well_formed(token):
            raise errors.invalid_token()
        digest = await self.digest(purpose, token)
        async with self._ctx.uow() as uow:
            record = await uow.tokens.by_hash(digest, purpose)
        if record is None or not record.usable(self._ctx.clock.now()):
            raise errors.invalid_token()
        return record

    async def refund_ip(self, client_ip: str) -> None:
        """Give the client IP back the attempt a successful presentation took."""
        await self._throttling.settle(refund=[self._throttling.token_ip(client_ip)])
