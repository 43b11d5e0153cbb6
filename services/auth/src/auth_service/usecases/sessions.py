"""Sessions: password login (tokens, or an MFA challenge), logout, listing and revoking."""

from __future__ import annotations

import datetime as dt

from servicekit.errors import ResourceExhausted
from servicekit.pagination import fetch_page

from auth_service.domain import (
    METHOD_RECOVERY,
    METHOD_TOTP,
    MfaChallenge,
    Session,
    User,
    challenge_hash,
    lookup_email,
    new_challenge_token,
    normalize_password,
)
from auth_service.ports import UnitOfWork
from auth_service.usecases import errors
from auth_service.usecases.config import ChallengeIssued, TokenPair
from auth_service.usecases.context import (
    digest,
    same,
    session_name,
    user_actor,
    user_name,
)
from auth_service.usecases.tokens import SecretExchange


class Sessions(SecretExchange):
    # ---- login -------------------------------------------------------------------------------

    async def login(
        self, email: str, password: str, client_ip: str = ""
    ) -> TokenPair | ChallengeIssued:
        """Tokens (aal1), or an MFA challenge when the user has a confirmed factor.

        Throttled per account (keyed by the normalised email, so an unknown account is
        throttled exactly like a known one) and per client IP, before any password work.
        """
        ctx = self._ctx
        normalized = normalize_password(password)
        address = lookup_email(email)
        account = self._throttling.login_account(address)
        ip = self._throttling.login_ip(client_ip)
        try:
            await self._throttling.reserve([ip, account], "LOGIN_THROTTLED")
        except ResourceExhausted:
            await self._audit_login_refusal(address, "LOGIN_THROTTLED", client_ip)
            raise
        async with ctx.uow() as uow:
            user = await uow.users.by_email(address)
        if user is None or user.deleted:
            await self._hasher.verify_dummy(normalized)
            await self._audit_login_refusal(
                address, "INVALID_PASSWORD", client_ip, user, looked_up=True
            )
            raise errors.invalid_credentials()
        if not await self._hasher.verify(user.password_hash, normalized):
            await self._audit_login_refusal(
                address, "INVALID_PASSWORD", client_ip, user, looked_up=True
            )
            raise errors.invalid_credentials()
        upgraded = (
            await self._hasher.hash(normalized)
            if self._hasher.needs_rehash(user.password_hash)
            else None
        )
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            fresh = await uow.users.get(user.id)
            # The password may have changed, or the account been deleted, while we verified.
            if fresh is None or fresh.deleted or not same(fresh.password_hash, user.password_hash):
                raise errors.invalid_credentials()
            # the success gives the attempt back in the transaction that records it
            await self._throttling.settle_in(uow, reset=[account], refund=[ip])
            if upgraded is not None:
                await uow.users.replace_password_hash(user.id, user.password_hash, upgraded, now)
            if await uow.totp.has_confirmed(user.id):
                issued, challenge_id = await self._issue_challenge(uow, user.id, now, client_ip)
                await ctx.audit_self(
                    uow,
                    "user.login",
                    user.id,
                    client_ip=client_ip,
                    metadata={
                        "method": "password",
                        "mfa_required": "true",
                        "challenge_id": challenge_id,
                    },
                )
                await uow.commit()
                ctx.after_commit()
                return issued
            session = Session.begin(ctx.new_id(), user.id, now, self._config.sessions, client_ip)
            refresh = await self._issuer.start_session(uow, session, ctx.new_id(), now)
            await ctx.audit_self(
                uow,
                "user.login",
                user.id,
                client_ip=client_ip,
                metadata={"method": "password", "session_id": session.id, "aal": session.aal},
            )
            await uow.commit()
        ctx.after_commit()
        return await self._issuer.pair(session, refresh, now, email_verified=fresh.email_verified)

    async def _audit_login_refusal(
        self,
        address: str,
        reason: str,
        client_ip: str,
        user: User | None = None,
        *,
        looked_up: bool = False,
    ) -> None:
        """A refused login: the same one outbox write whether the account exists or not.

        A known live account's event names it; for an unknown (or deleted) address the event
        names no one (``users/-``, actor ``anonymous``, reason ``UNKNOWN_ACCOUNT``), so the
        attacker-chosen address never becomes an event, yet a refusal costs the same database
        work either way and the answer's timing tells nothing (issue 8). Throttled per address
        digest for both, so the throttle's state cannot tell them apart either.
        """
        if not looked_up:
            async with self._ctx.uow() as uow:
                user = await uow.users.by_email(address)
        known = user is not None and not user.deleted
        await self._ctx.audit_refusal(
            digest(address),
            reason if known or reason == "LOGIN_THROTTLED" else "UNKNOWN_ACCOUNT",
            "user.login",
            user_name(user.id) if known and user is not None else "users/-",
            actor=user_actor(user.id) if known and user is not None else "anonymous",
            client_ip=client_ip,
        )

    async def _issue_challenge(
        self, uow: UnitOfWork, user_id: str, now: dt.datetime, client_ip: str
    ) -> tuple[ChallengeIssued, str]:
        token = new_challenge_token()
        ttl = self._config.mfa_challenge_ttl
        challenge_id = self._ctx.new_id()
        await uow.challenges.add(
            MfaChallenge(
                id=challenge_id,
                user_id=user_id,
                token_hash=challenge_hash(token),
                created_at=now,
                expires_at=now + ttl,
                client_ip=client_ip[:64],
            )
        )
        methods = [METHOD_TOTP]
        if await uow.recovery_codes.remaining(user_id) > 0:
            methods.append(METHOD_RECOVERY)
        return ChallengeIssued(token, int(ttl.total_seconds()), tuple(methods)), challenge_id

    # ---- the user's sessions -----------------------------------------------------------------

    async def logout(self, user_id: str, session_id: str) -> None:
        if not session_id:
            raise errors.no_session()
        # The logout's event names no reason: its action says it.
        await self._end_own_session(
            user_id, session_id, "logout", "user.logout", only_active=False, audit_reason=False
        )

    async def list_sessions(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[Session], str]:

        async def read(cursor: str, limit: int) -> list[Session]:
            after = _parse_session_cursor(cursor)
            async with self._ctx.uow() as uow:
                return await uow.sessions.list_active(user_id, self._ctx.clock.now(), after, limit)

        return await fetch_page(page_size, page_token, f"sessions:{user_id}", read, _session_cursor)

    async def revoke_session(self, user_id: str, session_id: str) -> None:
        await self._end_own_session(
            user_id,
            session_id,
            "revoked_by_user",
            "session.revoke",
            only_active=True,
            audit_reason=True,
        )

    async def _end_own_session(
        self,
        user_id: str,
        session_id: str,
        reason: str,
        action: str,
        *,
        only_active: bool,
        audit_reason: bool,
    ) -> None:
        """Revoke one of the user's own sessions and audit it; a logout ends even a session that
        is no longer active, a revocation only an active one."""
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            session = await uow.sessions.get(session_id)
            # Another user's session is answered exactly like a missing one.
            if (
                session is None
                or session.user_id != user_id
                or (only_active and not session.active(now))
            ):
                raise errors.session_not_found()
            session.revoke(now, reason)
            await uow.sessions.save(session)
            await ctx.audit(
                uow,
                action,
                session_name(user_id, session_id),
                actor=user_actor(user_id),
                metadata={"session_id": session_id, **({"reason": reason} if audit_reason else {})},
            )
            await uow.commit()
        ctx.after_commit()


def _session_cursor(s: Session) -> str:
    return f"{s.created_at.isoformat()}|{s.id}"


def _parse_session_cursor(cursor: str) -> tuple[dt.datetime, str] | None:
    if not cursor:
        return None
    created, _, sid = cursor.partition("|")
    try:
        return dt.datetime.fromisoformat(created), sid
    except ValueError:
        raise errors.invalid_page_token() from None
