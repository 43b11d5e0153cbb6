"""Periodic clean-up: dead MFA challenges, old mailed tokens, idle throttle counters, and the
erasure of accounts deleted longer ago than the retention window."""

from __future__ import annotations

import datetime as dt

from auth_service.usecases.accounts import Accounts
from auth_service.usecases.context import UseCaseContext
from auth_service.usecases.throttling import Throttling


class Maintenance:
    def __init__(self, ctx: UseCaseContext, throttling: Throttling, accounts: Accounts) -> None:
        self._ctx, self._throttling, self._accounts = ctx, throttling, accounts

    def __repr__(self) -> str:
        return "Maintenance()"

    async def purge_expired(self) -> None:
        """Drop dead MFA challenges and idle throttle counters (maintenance)."""
        now = self._ctx.clock.now()
        idle = self._throttling.idle_after()
        async with self._ctx.uow() as uow:
            await uow.challenges.purge(now - dt.timedelta(hours=1))
            await uow.tokens.purge(now - dt.timedelta(days=1))
            await uow.throttle.purge(now - idle, now)
            await uow.commit()
        await self._accounts.purge_deleted_accounts()
