"""The TOTP factor: enrollment, status, removal, and the second login step (a TOTP code or a
recovery code against the challenge a password login issued)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unauthenticated,
)

from auth_service import mails
from auth_service.domain import (
    AAL1,
    AAL2,
    AMR_OTP,
    AMR_PASSWORD,
    AMR_RECOVERY,
    METHOD_RECOVERY,
    METHOD_TOTP,
    Assurance,
    MfaChallenge,
    Session,
    TotpFactor,
    challenge_hash,
    challenge_well_formed,
    fold_recovery_code,
    totp_context,
)
from auth_service.domain import totp as totp_rules
from auth_service.ports import Sealer, UnitOfWork
from auth_service.usecases import errors
from auth_service.usecases.config import MfaState, TokenPair, TotpEnrollment
from auth_service.usecases.context import UseCaseContext, user_actor, user_name
from auth_service.usecases.recovery import RecoveryCodes
from auth_service.usecases.throttling import Bucket, Throttling
from auth_service.usecases.tokens import TokenIssuer

_log = logging.getLogger("auth_service")


@dataclass(frozen=True, slots=True)
class _Proof:
    """A second factor that checked out, still to be spent (atomically, with the session)."""

    method: str
    factor: TotpFactor | None = None
    step: int | None = None
    recovery_digest: str = ""


class Mfa:
    def __init__(
        self,
        ctx: UseCaseContext,
        sealer: Sealer,
        throttling: Throttling,
        issuer: TokenIssuer,
        recovery: RecoveryCodes,
    ) -> None:
        self._ctx, self._sealer, self._throttling = ctx, sealer, throttling
        self._issuer, self._recovery = issuer, recovery
        self._config = ctx.config

    def __repr__(self) -> str:
        return "Mfa()"

    # ---- the second login step ---------------------------------------------------------------

    async def verify_mfa_challenge(
        self, challenge_token: str, totp_code: str, recovery_code: str, client_ip: str = ""
    ) -> TokenPair:
        """The second login step: a TOTP code or a recovery code against a live challenge.

        1. the challenge must be live (else the client IP pays an attempt);
        2. one attempt is taken from the IP's and the user's counters, then from the challenge;
        3. the code is checked (a TOTP step newer than the last accepted, or a recovery code);
        4. in one transaction the challenge and the code are spent and the aal2 session begins;
           if the code was spent meanwhile (a replay), nothing of it commits.
        """
        if bool(totp_code) == bool(recovery_code):
            raise InvalidArgument(
                "set exactly one of totp_code and recovery_code", reason="INVALID_MFA_REQUEST"
            )
        if not challenge_well_formed(challenge_token):
            raise errors.invalid_challenge()
        ip = self._throttling.mfa_ip(client_ip)
        now = self._ctx.clock.now()
        challenge = await self._live_challenge(challenge_token, ip, now)
        method = METHOD_TOTP if totp_code else METHOD_RECOVERY
        user_bucket = await self._take_attempt(challenge, ip, method, client_ip, now)
        proof = await self._check_code(challenge.user_id, totp_code, recovery_code, now, client_ip)
        session, refresh = await self._begin_session(challenge, proof, now, client_ip)
        self._ctx.after_commit()
        if proof.method == METHOD_RECOVERY:
            _log.warning("recovery code used", extra={"user_id": challenge.user_id})
        await self._throttling.settle(reset=[user_bucket], refund=[ip])
        return await self._issuer.pair(session, refresh, now)

    async def _live_challenge(self, token: str, ip: Bucket, now: dt.datetime) -> MfaChallenge:
        """The usable challenge of ``token``; a dead or unknown one costs the IP an attempt."""
        async with self._ctx.uow() as uow:
            challenge = await uow.challenges.by_hash(challenge_hash(token))
        if challenge is None or not challenge.usable(now, self._config.mfa_challenge_attempts):
            await self._throttling.reserve([ip], "MFA_THROTTLED")
            raise errors.invalid_challenge()
        return challenge

    async def _take_attempt(
        self, challenge: MfaChallenge, ip: Bucket, method: str, client_ip: str, now: dt.datetime
    ) -> Bucket:
        """Count the attempt against the IP, the user and the challenge; the user's counter."""
        user_bucket = self._throttling.mfa_user(challenge.user_id)
        try:
            await self._throttling.reserve([ip, user_bucket], "MFA_THROTTLED")
        except ResourceExhausted:
            await self._audit_refusal(challenge.user_id, "MFA_THROTTLED", method, client_ip)
            raise
        async with self._ctx.uow() as uow:
            taken = await uow.challenges.count_attempt(
                challenge.id, now, self._config.mfa_challenge_attempts
            )
            await uow.commit()
        if not taken:
            raise errors.invalid_challenge()
        return user_bucket

    async def _check_code(
        self, user_id: str, totp_code: str, recovery_code: str, now: dt.datetime, client_ip: str
    ) -> _Proof:
        """The presented code, checked but not yet spent; a wrong one is refused (audited)."""
        if totp_code:
            async with self._ctx.uow() as uow:
                factor = await uow.totp.for_user(user_id)
            if factor is None or not factor.confirmed:
                raise errors.invalid_mfa_code()
            step = await self._match(factor, totp_code, now)
            if step is None:
                _log.info("mfa verification failed", extra={"user_id": user_id, "method": "totp"})
                await self._audit_refusal(user_id, "INVALID_MFA_CODE", METHOD_TOTP, client_ip)
                raise errors.invalid_mfa_code()
            return _Proof(METHOD_TOTP, factor=factor, step=step)
        folded = fold_recovery_code(recovery_code)
        if folded is None:
            await self._audit_refusal(user_id, "INVALID_MFA_CODE", METHOD_RECOVERY, client_ip)
            raise errors.invalid_mfa_code()
        return _Proof(METHOD_RECOVERY, recovery_digest=await self._recovery.digest(folded))

    async def _begin_session(
        self, challenge: MfaChallenge, proof: _Proof, now: dt.datetime, client_ip: str
    ) -> tuple[Session, str]:
        """Spend the challenge and the code and begin the aal2 session, all or nothing."""
        ctx, user_id = self._ctx, challenge.user_id
        amr = (AMR_PASSWORD, AMR_OTP if proof.method == METHOD_TOTP else AMR_RECOVERY)
        session = Session.begin(
            ctx.new_id(), user_id, now, self._config.sessions, client_ip, aal=AAL2, amr=amr
        )
        async with ctx.uow() as uow:
            user = await uow.users.get(user_id)
            if user is None or user.deleted:
                raise errors.invalid_challenge()
            if not await uow.challenges.consume(challenge.id, now):
                raise errors.invalid_challenge()
            failure = await self._spend(uow, user_id, proof, now)
            if not failure:
                refresh = await self._issuer.start_session(uow, session, ctx.new_id(), now)
                await self._audit_success(uow, challenge, proof, session, client_ip)
                await uow.commit()
                return session, refresh
        # the transaction rolled back: the challenge was not consumed, no session exists
        await self._audit_refusal(user_id, failure, proof.method, client_ip)
        raise errors.invalid_mfa_code()

    async def _spend(self, uow: UnitOfWork, user_id: str, proof: _Proof, now: dt.datetime) -> str:
        """Spend the code in ``uow``; the refusal reason when it was spent already, else ``""``."""
        if proof.factor is not None and proof.step is not None:
            if not await uow.totp.consume_step(proof.factor.id, proof.step):
                _log.warning(
                    "totp code replay refused", extra={"user_id": user_id, "step": proof.step}
                )
                return "TOTP_REPLAY"
        elif not await uow.recovery_codes.consume(user_id, proof.recovery_digest, now):
            _log.info("mfa verification failed", extra={"user_id": user_id, "method": "recovery"})
            return "INVALID_MFA_CODE"
        return ""

    async def _audit_success(
        self,
        uow: UnitOfWork,
        challenge: MfaChallenge,
        proof: _Proof,
        session: Session,
        client_ip: str,
    ) -> None:
        user_id = challenge.user_id
        await self._ctx.audit_self(
            uow,
            "user.verifyMfa",
            user_id,
            client_ip=client_ip,
            metadata={
                "method": proof.method,
                "session_id": session.id,
                "aal": session.aal,
                "challenge_id": challenge.id,
            },
        )
        if proof.method == METHOD_RECOVERY:
            await self._ctx.audit_self(
                uow,
                "recoveryCode.use",
                user_id,
                client_ip=client_ip,
                metadata={
                    "session_id": session.id,
                    "remaining": str(await uow.recovery_codes.remaining(user_id)),
                },
            )

    async def _audit_refusal(self, user_id: str, reason: str, method: str, client_ip: str) -> None:
        await self._ctx.audit_refusal(
            user_id,
            reason,
            "user.verifyMfa",
            user_name(user_id),
            actor=user_actor(user_id),
            client_ip=client_ip,
            metadata={"method": method},
        )

    # ---- the factor --------------------------------------------------------------------------

    async def mfa_status(self, user_id: str) -> MfaState:
        async with self._ctx.uow() as uow:
            factor = await uow.totp.for_user(user_id)
            remaining = await uow.recovery_codes.remaining(user_id)
        return MfaState(
            totp_enabled=factor is not None and factor.confirmed,
            totp_pending=factor is not None and not factor.confirmed,
            totp_enabled_at=factor.confirmed_at if factor else None,
            recovery_codes_remaining=remaining if factor and factor.confirmed else 0,
        )

    async def begin_totp_enrollment(self, user_id: str, assurance: Assurance) -> TotpEnrollment:
        ctx = self._ctx
        user = await ctx.live_user(user_id)
        has_factor = await ctx.has_factor(user_id)
        ctx.require_step_up(assurance, has_factor)
        if has_factor:
            raise FailedPrecondition(
                "TOTP is already enabled; disable it first to enroll a new one",
                reason="MFA_ALREADY_ENABLED",
            )
        secret = totp_rules.new_secret()
        factor_id = ctx.new_id()
        sealed = await self._sealer.encrypt(secret, totp_context(user_id, factor_id))
        now = ctx.clock.now()
        async with ctx.uow() as uow:
            if not await uow.totp.replace_pending(
                TotpFactor(factor_id, user_id, sealed, now, None, 0)
            ):
                raise FailedPrecondition(
                    "TOTP was enabled concurrently", reason="MFA_ALREADY_ENABLED"
                )
            await ctx.audit_self(
                uow,
                "totp.enroll",
                user_id,
                metadata={"factor_id": factor_id},
            )
            await uow.commit()
        ctx.after_commit()
        _log.info("totp enrollment begun", extra={"user_id": user_id, "factor_id": factor_id})
        return TotpEnrollment(
            otpauth_uri=totp_rules.otpauth_uri(secret, user.email, self._config.totp_issuer),
            secret=totp_rules.base32_secret(secret),
        )

    async def confirm_totp_enrollment(
        self, user_id: str, session_id: str, code: str, client_ip: str = ""
    ) -> tuple[list[str], TokenPair]:
        """Confirm with a code; returns the recovery codes and tokens of a new aal2 session.

        The confirming code's step counts as used. Every aal1 session of the user, the calling
        one included, is revoked: the caller continues on the new aal2 session (a new session
        id at the privilege change, so nothing issued before it carries aal2).
        """
        if not session_id:
            raise errors.no_session()
        ctx = self._ctx
        async with ctx.uow() as uow:
            factor = await uow.totp.for_user(user_id)
            current = await uow.sessions.get(session_id)
            owner = await uow.users.get(user_id)
        user_email = owner.email if owner is not None else ""
        if factor is None or factor.confirmed:
            raise FailedPrecondition(
                "no TOTP enrollment is pending; begin one first", reason="NO_PENDING_ENROLLMENT"
            )
        now = ctx.clock.now()
        if current is None or current.user_id != user_id or not current.active(now):
            raise Unauthenticated("the session has ended", reason="SESSION_ENDED")
        ip = self._throttling.mfa_ip(client_ip)
        user_bucket = self._throttling.mfa_user(user_id)
        await self._throttling.reserve([ip, user_bucket], "MFA_THROTTLED")
        step = await self._match(factor, code, now)
        if step is None:
            raise _wrong_code()
        codes, hashes = await self._recovery.new_set()
        session = Session.begin(
            ctx.new_id(),
            user_id,
            now,
            self._config.sessions,
            client_ip,
            aal=AAL2,
            amr=(AMR_PASSWORD, AMR_OTP),
        )
        async with ctx.uow() as uow:
            if not await uow.totp.confirm(factor.id, step, now):
                raise _wrong_code()
            await uow.recovery_codes.replace(user_id, hashes, now, ctx.new_id)
            revoked = await uow.sessions.revoke_all(user_id, now, "mfa_enabled", aal=AAL1)
            refresh = await self._issuer.start_session(uow, session, ctx.new_id(), now)
            if user_email:
                await ctx.send(uow, user_email, "factor-added", mails.factor_added(now))
            await ctx.audit_self(
                uow,
                "totp.confirm",
                user_id,
                client_ip=client_ip,
                metadata={
                    "factor_id": factor.id,
                    "session_id": session.id,
                    "sessions_revoked": str(revoked),
                },
            )
            await uow.commit()
        ctx.after_commit()
        _log.info(
            "totp enabled",
            extra={"user_id": user_id, "factor_id": factor.id, "sessions_revoked": revoked},
        )
        await self._throttling.settle(reset=[user_bucket], refund=[ip])
        return codes, await self._issuer.pair(session, refresh, now)

    async def disable_totp(self, user_id: str, assurance: Assurance) -> None:
        ctx = self._ctx
        async with ctx.uow() as uow:
            factor = await uow.totp.for_user(user_id)
        if factor is None:
            raise errors.mfa_not_enabled()
        ctx.require_step_up(assurance, factor.confirmed)
        async with ctx.uow() as uow:
            await uow.totp.remove(user_id)
            await uow.recovery_codes.remove(user_id)
            owner = await uow.users.get(user_id)
            if factor.confirmed and owner is not None:
                await ctx.send(
                    uow, owner.email, "factor-removed", mails.factor_removed(ctx.clock.now())
                )
            await ctx.audit_self(
                uow,
                "totp.disable",
                user_id,
                metadata={"factor_id": factor.id, "confirmed": str(factor.confirmed).lower()},
            )
            await uow.commit()
        ctx.after_commit()
        _log.warning("totp disabled", extra={"user_id": user_id, "factor_id": factor.id})

    async def _match(self, factor: TotpFactor, code: str, now: dt.datetime) -> int | None:
        if not totp_rules.well_formed_code(code):
            return None
        secret = await self._sealer.decrypt(
            factor.sealed_secret, totp_context(factor.user_id, factor.id)
        )
        step = totp_rules.match_step(secret, code, totp_rules.time_step(now.timestamp()))
        # The step must be newer than the last accepted one (checked again, atomically, on write).
        return step if step is not None and step > factor.last_step else None


def _wrong_code() -> InvalidArgument:
    return InvalidArgument.field("code", "is incorrect or expired", reason="INVALID_MFA_CODE")
