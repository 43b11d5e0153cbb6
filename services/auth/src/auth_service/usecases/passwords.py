"""Passwords: change (with the current one, under step-up) and reset (by a mailed token)."""

from __future__ import annotations

import logging

from servicekit.errors import FailedPrecondition, InvalidArgument, ResourceExhausted

from auth_service import mails
from auth_service.domain import (
    Assurance,
    Blocklist,
    check_password,
    lookup_email,
    normalize_password,
)
from auth_service.domain.account_token import PASSWORD_RESET
from auth_service.ports import PasswordHasher, Sealer
from auth_service.usecases import errors
from auth_service.usecases.account_tokens import AccountTokens
from auth_service.usecases.context import UseCaseContext, same, user_actor, user_name
from auth_service.usecases.throttling import Throttling

_log = logging.getLogger("auth_service")


class Passwords:
    def __init__(
        self,
        ctx: UseCaseContext,
        hasher: PasswordHasher,
        blocklist: Blocklist,
        sealer: Sealer,
        throttling: Throttling,
        tokens: AccountTokens,
    ) -> None:
        self._ctx, self._hasher, self._blocklist, self._sealer = ctx, hasher, blocklist, sealer
        self._throttling, self._tokens = throttling, tokens
        self._config = ctx.config

    def __repr__(self) -> str:
        return "Passwords()"

    async def change_password(
        self,
        user_id: str,
        session_id: str,
        current: str,
        new: str,
        assurance: Assurance | None = None,
    ) -> None:
        """Step-up first (aal2 when the user has a factor, and a recent login); the current
        password is checked under the account's login throttle. The factor is untouched, so a
        password change never bypasses MFA."""
        ctx = self._ctx
        async with ctx.uow() as uow:
            user = await uow.users.get(user_id)
            has_factor = await uow.totp.has_confirmed(user_id)
        if user is None or user.deleted:
            raise errors.user_not_found()
        ctx.require_step_up(assurance or Assurance(), has_factor)
        current_n = normalize_password(current)
        account = self._throttling.login_account(user.email)
        try:
            await self._throttling.reserve([account], "LOGIN_THROTTLED")
        except ResourceExhausted:
            await self._audit_refusal(user_id, "LOGIN_THROTTLED")
            raise
        if not await self._hasher.verify(user.password_hash, current_n):
            await self._audit_refusal(user_id, "INVALID_CURRENT_PASSWORD")
            raise InvalidArgument.field(
                "current_password", "is incorrect", reason="INVALID_CURRENT_PASSWORD"
            )
        await self._throttling.settle(reset=[account])
        new_n = check_password(new, user.email, self._blocklist, "new_password")
        if same(new_n, current_n):
            raise InvalidArgument.field(
                "new_password", "must differ from the current password", reason="PASSWORD_UNCHANGED"
            )
        hashed = await self._hasher.hash(new_n)
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            if not await uow.users.replace_password_hash(user_id, user.password_hash, hashed, now):
                raise FailedPrecondition(
                    "the password was changed concurrently; try again", reason="CONCURRENT_CHANGE"
                )
            revoked = await uow.sessions.revoke_all(
                user_id, now, "password_changed", keep=session_id
            )
            await ctx.audit_self(
                uow,
                "user.changePassword",
                user_id,
                metadata={"session_id": session_id, "sessions_revoked": str(revoked)},
            )
            await uow.commit()
        ctx.after_commit()

    async def _audit_refusal(self, user_id: str, reason: str) -> None:
        await self._ctx.audit_refusal(
            user_id, reason, "user.changePassword", user_name(user_id), actor=user_actor(user_id)
        )

    async def request_password_reset(self, email: str, client_ip: str = "") -> None:
        """Mail a reset link to a live account. The answer is the same for any address: nothing
        for an unknown one, throttled per address (known or not) and per client IP alike."""
        ctx = self._ctx
        address = lookup_email(email)
        await self._throttling.reserve(
            self._throttling.mail("reset", address, client_ip), "RESET_THROTTLED"
        )
        token, digest = await self._tokens.mint(PASSWORD_RESET)
        async with ctx.uow() as uow:
            user = await uow.users.by_email(address)
            if user is None or user.deleted:
                # the sealing a real mail costs (a KMS round trip with Vault), so the timing of
                # the answer does not tell a registered address from another
                await self._sealer.encrypt(bytes(1024), "mail/decoy")
                return
            token_id = await self._tokens.store_and_mail(
                uow,
                PASSWORD_RESET,
                (token, digest),
                user.id,
                user.email,
                self._config.reset_token_ttl,
                "password-reset",
                mails.password_reset,
            )
            await ctx.audit_self(
                uow,
                "user.requestPasswordReset",
                user.id,
                client_ip=client_ip,
                metadata={"reset_id": token_id},
            )
            await uow.commit()
        ctx.after_commit()

    async def reset_password(self, token: str, new_password: str, client_ip: str = "") -> None:
        """Set a new password with a reset token: single use (of two concurrent uses exactly
        one wins), every session and refresh family ended, open MFA challenges ended, a notice
        mailed. The TOTP factor stays: the next login still needs the second factor."""
        ctx = self._ctx
        record = await self._tokens.live(PASSWORD_RESET, token, client_ip)
        async with ctx.uow() as uow:
            user = await uow.users.get(record.user_id)
        if user is None or user.deleted:
            raise errors.invalid_token()
        new_n = check_password(new_password, user.email, self._blocklist, "new_password")
        hashed = await self._hasher.hash(new_n)
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            if not await uow.tokens.consume(record.id, now):
                raise errors.invalid_token()
            if not await uow.users.set_password_hash(user.id, hashed, now):
                raise errors.invalid_token()
            revoked = await uow.sessions.revoke_all(user.id, now, "password_reset")
            await uow.challenges.consume_all(user.id, now)
            await uow.tokens.retire(user.id, (PASSWORD_RESET,), now)
            await ctx.send(uow, user.email, "password-was-reset", mails.password_was_reset(now))
            await ctx.audit_self(
                uow,
                "user.resetPassword",
                user.id,
                client_ip=client_ip,
                metadata={"reset_id": record.id, "sessions_revoked": str(revoked)},
            )
            await uow.commit()
        ctx.after_commit()
        await self._tokens.refund_ip(client_ip)
        await self._throttling.settle(reset=[self._throttling.login_account(user.email)])
        _log.info("password reset", extra={"user_id": user.id, "sessions_revoked": revoked})
