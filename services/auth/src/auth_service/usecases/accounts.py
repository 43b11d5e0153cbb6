"""Accounts: sign-up, email verification and change, look-ups, deletion and erasure."""

from __future__ import annotations

import logging

from servicekit.audit import Outcome
from servicekit.errors import AlreadyExists, FailedPrecondition, InvalidArgument

from auth_service import mails
from auth_service.domain import (
    Assurance,
    Blocklist,
    User,
    check_password,
    lookup_email,
    validate_display_name,
    validate_email,
)
from auth_service.domain.account_token import (
    CHANGE_EMAIL,
    PASSWORD_RESET,
    VERIFY_EMAIL,
    AccountToken,
    account_token_well_formed,
)
from auth_service.ports import Invitations, Memberships, PasswordHasher
from auth_service.usecases import errors
from auth_service.usecases.account_tokens import AccountTokens
from auth_service.usecases.context import UseCaseContext, user_actor, user_name
from auth_service.usecases.throttling import Throttling

_log = logging.getLogger("auth_service")


class Accounts:
    def __init__(
        self,
        ctx: UseCaseContext,
        hasher: PasswordHasher,
        blocklist: Blocklist,
        throttling: Throttling,
        tokens: AccountTokens,
        *,
        memberships: Memberships | None = None,
        invitations: Invitations | None = None,
    ) -> None:
        self._ctx, self._hasher, self._blocklist = ctx, hasher, blocklist
        self._throttling, self._tokens = throttling, tokens
        self._config = ctx.config
        self._memberships, self._invitations = memberships, invitations

    def __repr__(self) -> str:
        return "Accounts()"

    # ---- sign-up and the address -------------------------------------------------------------

    async def sign_up(
        self, email: str, password: str, display_name: str, client_ip: str = ""
    ) -> User:
        """Create an unverified account and mail it a verification link.

        The answer is the same whether or not the address is registered: for a registered
        address nothing is created, its owner is mailed instead, and the user returned is a
        stand-in that names no account. The password is hashed either way (same timing).
        Limited per address (the edge limits the auth class per client IP).
        """
        ctx = self._ctx
        address = validate_email(email)
        name = validate_display_name(display_name)
        normalized = check_password(password, address, self._blocklist)
        await self._check_signup_policy(address)
        # Per address (a victim's mailbox is not flooded); per IP the edge's auth class limits.
        await self._throttling.reserve(
            self._throttling.mail("signup", address, client_ip)[1:], "SIGNUP_THROTTLED"
        )
        hashed = await self._hasher.hash(normalized)
        token, digest = await self._tokens.mint(VERIFY_EMAIL)
        now = ctx.clock.now()
        user = User(ctx.new_id(), address, name, hashed, now, now)
        stand_in = User(user.id, address, name, "", now, now)
        async with ctx.uow() as uow:
            existing = await uow.users.by_email(address)
            if existing is not None:
                if not existing.deleted:
                    await ctx.send(
                        uow,
                        address,
                        "account-exists",
                        mails.account_exists(self._config.public_url),
                    )
                    await ctx.audit(
                        uow,
                        "user.signUp",
                        user_name(existing.id),
                        actor="system",
                        outcome=Outcome.DENIED,
                        client_ip=client_ip,
                        metadata={"reason": "EMAIL_TAKEN"},
                    )
                    await uow.commit()
                    ctx.after_commit()
                return stand_in
            try:
                await uow.users.add(user)  # the unique index settles a concurrent sign-up
            except AlreadyExists:
                return stand_in
            await self._tokens.store_and_mail(
                uow,
                VERIFY_EMAIL,
                (token, digest),
                user.id,
                address,
                self._config.verify_token_ttl,
                "verify-email",
                mails.verify_email,
            )
            await ctx.audit_self(
                uow,
                "user.signUp",
                user.id,
                client_ip=client_ip,
            )
            await uow.commit()
        ctx.after_commit()
        return user

    async def _check_signup_policy(self, address: str) -> None:
        policy = self._config.signup
        invited = False
        if policy.needs_invitation:
            if self._invitations is None:
                raise FailedPrecondition("invitations are not reachable", reason="NOT_ENABLED")
            invited = await self._invitations.pending_for(address)
        policy.check(address, invited)

    async def send_verification_email(self, user_id: str, client_ip: str = "") -> None:
        """Mail a fresh verification link (the previous one stops working)."""
        ctx = self._ctx
        user = await ctx.live_user(user_id)
        if user.email_verified:
            raise FailedPrecondition(
                "the email address is already verified", reason="EMAIL_ALREADY_VERIFIED"
            )
        await self._throttling.reserve(
            self._throttling.mail("verify", user.email, client_ip), "MAIL_THROTTLED"
        )
        token, digest = await self._tokens.mint(VERIFY_EMAIL)
        async with ctx.uow() as uow:
            await self._tokens.store_and_mail(
                uow,
                VERIFY_EMAIL,
                (token, digest),
                user.id,
                user.email,
                self._config.verify_token_ttl,
                "verify-email",
                mails.verify_email,
            )
            await uow.commit()
        ctx.after_commit()

    async def change_email(
        self, user_id: str, new_email: str, assurance: Assurance, client_ip: str = ""
    ) -> None:
        """Mail a confirmation link to ``new_email``; the address changes when it is opened.

        Needs step-up (a recent login; aal2 with a factor). A new address that is already
        registered gets a notice instead of a link, and the caller the same answer.
        """
        ctx = self._ctx
        user = await ctx.live_user(user_id)
        ctx.require_step_up(assurance, await ctx.has_factor(user_id))
        address = validate_email(new_email, "new_email")
        if address == user.email:
            raise InvalidArgument.field(
                "new_email", "is already your address", reason="EMAIL_UNCHANGED"
            )
        await self._throttling.reserve(
            self._throttling.mail("change", address, client_ip), "MAIL_THROTTLED"
        )
        token, digest = await self._tokens.mint(CHANGE_EMAIL)
        async with ctx.uow() as uow:
            taken = await uow.users.by_email(address) is not None
            if taken:
                await ctx.send(
                    uow, address, "account-exists", mails.account_exists(self._config.public_url)
                )
            else:
                await self._tokens.store_and_mail(
                    uow,
                    CHANGE_EMAIL,
                    (token, digest),
                    user.id,
                    address,
                    self._config.verify_token_ttl,
                    "confirm-email-change",
                    mails.confirm_email_change,
                )
            await ctx.audit_self(
                uow,
                "user.requestEmailChange",
                user.id,
                client_ip=client_ip,
            )
            await uow.commit()
        ctx.after_commit()

    async def verify_email(self, token: str, client_ip: str = "") -> None:
        """Open a verification link: of sign-up (the address becomes verified) or of an email
        change (the account moves to the new, verified address; the old one is told)."""
        ctx = self._ctx
        ip = self._throttling.token_ip(client_ip)
        await self._throttling.reserve([ip], "TOKEN_THROTTLED")
        if not account_token_well_formed(token):
            raise errors.invalid_token()
        record: AccountToken | None = None
        for purpose in (VERIFY_EMAIL, CHANGE_EMAIL):
            digest = await self._tokens.digest(purpose, token)
            async with ctx.uow() as uow:
                record = await uow.tokens.by_hash(digest, purpose)
            if record is not None:
                break
        now = ctx.clock.now()
        if record is None or not record.usable(now):
            raise errors.invalid_token()
        async with ctx.uow() as uow:
            user = await uow.users.get(record.user_id)
        if user is None or user.deleted:
            raise errors.invalid_token()
        async with ctx.uow() as uow:
            if not await uow.tokens.consume(record.id, now):
                raise errors.invalid_token()
            if record.purpose == VERIFY_EMAIL:
                if not await uow.users.mark_verified(user.id, record.email, now):
                    raise errors.invalid_token()  # the address changed since the mail was sent
                action, metadata = "user.verifyEmail", {}
            else:
                if not await uow.users.change_email(user.id, record.email, now):
                    raise errors.invalid_token()  # taken meanwhile
                await uow.tokens.retire(user.id, (PASSWORD_RESET, VERIFY_EMAIL), now)
                await ctx.send(
                    uow, user.email, "email-changed", mails.email_changed(record.email, now)
                )
                action, metadata = "user.changeEmail", {"change_id": record.id}
            await ctx.audit(
                uow,
                action,
                user_name(user.id),
                actor=user_actor(user.id),
                client_ip=client_ip,
                metadata=metadata,
            )
            await uow.commit()
        ctx.after_commit()
        await self._throttling.settle(refund=[ip])

    # ---- look-ups ------------------------------------------------------------------------------

    async def current_user(self, user_id: str) -> User:
        return await self._ctx.live_user(user_id)

    async def lookup_user(self, email: str, user_id: str) -> User:
        if bool(email) == bool(user_id):
            raise InvalidArgument("set exactly one of email and user_id", reason="INVALID_LOOKUP")
        async with self._ctx.uow() as uow:
            user = (
                await uow.users.by_email(lookup_email(email))
                if email
                else await uow.users.get(user_id)
            )
        if user is None or user.deleted:
            raise errors.user_not_found()
        return user

    # ---- deletion and erasure ----------------------------------------------------------------

    async def delete_user(self, user_id: str) -> None:
        """Soft-delete an account and end its sessions (no RPC yet; purge comes later)."""
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            await uow.users.mark_deleted(user_id, now)
            revoked = await uow.sessions.revoke_all(user_id, now, "account_deleted")
            await ctx.audit(
                uow,
                "user.delete",
                user_name(user_id),
                actor=ctx.caller(),
                metadata={"sessions_revoked": str(revoked)},
            )
            await uow.commit()
        ctx.after_commit()

    async def delete_account(self, user_id: str, assurance: Assurance) -> None:
        """The user deletes their own account: step-up first (a recent login; aal2 with a
        factor), refused while they are the last Owner of a workspace (the error names them),
        then every membership goes (workspaces service), every session and open challenge
        ends, live mailed tokens die, and a notice is mailed. Personal data stays for
        ``account_retention`` and is then erased by ``purge_deleted_accounts``."""
        ctx = self._ctx
        user = await ctx.live_user(user_id)
        ctx.require_step_up(assurance, await ctx.has_factor(user_id))
        if self._memberships is None:
            raise FailedPrecondition("account deletion is not enabled", reason="NOT_ENABLED")
        blocking = await self._memberships.remove_all(user_id)
        if blocking:
            raise _last_owner(blocking)
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            await uow.users.mark_deleted(user_id, now)
            revoked = await uow.sessions.revoke_all(user_id, now, "account_deleted")
            await uow.challenges.consume_all(user_id, now)
            await uow.tokens.retire(user_id, (PASSWORD_RESET, VERIFY_EMAIL, CHANGE_EMAIL), now)
            await ctx.send(
                uow,
                user.email,
                "account-deleted",
                mails.account_deleted(now, self._config.account_retention.days),
            )
            await ctx.audit_self(
                uow,
                "user.delete",
                user_id,
                metadata={"sessions_revoked": str(revoked), "by": "self"},
            )
            await uow.commit()
        ctx.after_commit()
        _log.info("account deleted", extra={"user_id": user_id, "sessions_revoked": revoked})

    async def purge_deleted_accounts(self, batch: int = 100) -> int:
        """Erase the personal data of accounts deleted longer ago than the retention window,
        leaving a tombstone (id kept, address freed); the number erased."""
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            due = await uow.users.deleted_before(now - self._config.account_retention, batch)
        erased = 0
        for user_id in due:
            async with ctx.uow() as uow:
                if await uow.users.erase(user_id, now):
                    await ctx.audit(uow, "user.purge", user_name(user_id), actor="system")
                    await uow.commit()
                    erased += 1
        if erased:
            ctx.after_commit()
        return erased


def _last_owner(blocking: list[tuple[str, str]]) -> FailedPrecondition:
    named = ", ".join(f"{display} ({name})" for name, display in blocking[:5])
    if len(blocking) > 5:
        named += f" and {len(blocking) - 5} more"
    return FailedPrecondition(
        f"you are the last Owner of {named}: transfer ownership or delete the workspace first",
        reason="LAST_OWNER",
        metadata={"workspaces": ",".join(name for name, _ in blocking[:5])},
    )
