"""Use cases of the auth service: fetch → check → act → commit, primitives in and out.

Secrets (passwords, refresh tokens, private keys, TOTP secrets and codes, recovery codes, PINs)
travel only as arguments and return values; they are never logged, never put in an error, never
put in an audit event, and never stored in clear.

Audit (DESIGN §4, docs/auth.md "Audit events"): every mutation and every authentication decision
records an event in the auth outbox. Changes record theirs in the change's own transaction;
refusals (which change nothing, beyond a throttle counter) record theirs in a transaction of their
own, only for known accounts, PINs and challenges, at most one per subject and reason per minute
(:class:`RefusalThrottle`), and never fail or alter the refusal itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from servicekit.audit import AuditEvent, AuditMetadataError, AuditOrigin, Outcome, check_metadata
from servicekit.clock import Clock
from servicekit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from servicekit.mail import Mail
from servicekit.pagination import encode_token, page_request

from auth_service import mails
from auth_service.adapters.repository import AuthUnitOfWork
from auth_service.domain import (
    AAL1,
    AAL2,
    AMR_OTP,
    AMR_PASSWORD,
    AMR_RECOVERY,
    METHOD_RECOVERY,
    METHOD_TOTP,
    Assurance,
    Blocklist,
    DeploymentPin,
    KeyState,
    MfaChallenge,
    RefreshRecord,
    Replay,
    RotationPlan,
    RotationPolicy,
    Session,
    SessionPolicy,
    SigningKey,
    ThrottlePolicy,
    TotpFactor,
    User,
    admit,
    challenge_hash,
    challenge_well_formed,
    check_password,
    check_pin,
    classify_replay,
    fold_recovery_code,
    lookup_email,
    new_challenge_token,
    new_recovery_codes,
    new_refresh_token,
    normalize_password,
    plan_rotation,
    recovery_code_hash,
    step_up_problem,
    thumbprint_kid,
    token_hash,
    totp_context,
    validate_display_name,
    validate_email,
    well_formed,
    well_formed_pin,
)
from auth_service.domain import totp as totp_rules
from auth_service.domain.account_token import (
    CHANGE_EMAIL,
    PASSWORD_RESET,
    VERIFY_EMAIL,
    AccountToken,
    account_token_hash,
    account_token_well_formed,
    new_account_token,
)
from auth_service.domain.signup_policy import SignupPolicy

_log = logging.getLogger("auth_service")


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, hashed: str, password: str) -> bool: ...
    async def verify_dummy(self, password: str) -> None: ...
    def needs_rehash(self, hashed: str) -> bool: ...


class Sealer(Protocol):
    """Encryption at rest bound to a context; ``servicekit.kms.KeyManager`` has this shape."""

    async def encrypt(self, plaintext: bytes, context: str) -> str: ...
    async def decrypt(self, ciphertext: str, context: str) -> bytes: ...


class Memberships(Protocol):
    """The user's workspace memberships (the workspaces service's RemoveUserMemberships)."""

    async def remove_all(self, user_id: str) -> list[tuple[str, str]]: ...


class Invitations(Protocol):
    """Whether an address has a pending workspace invitation (for an invite-only sign-up)."""

    async def pending_for(self, email: str) -> bool: ...


class TokenSigner(Protocol):
    def generate(self) -> tuple[bytes, bytes]: ...
    def sign(
        self, claims: Mapping[str, object], private_key: bytes, kid: str, typ: str = "at+jwt"
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class ThrottlePolicies:
    """Attempt limits per key kind (DESIGN §4: backoff after 5 failures, ≤100/h per account).

    Per-IP counters allow more free failures than per-account ones: an IP is often shared (NAT,
    office proxies), and guessing against one account is already bounded by its own counter.
    """

    login_account: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    login_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(20, 300))
    mfa_user: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    mfa_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(20, 300))
    # PINs: backoff per deployment × client IP, so that one guesser cannot lock a deployment out
    # for everyone; a generous per-deployment ceiling (no backoff) bounds distributed guessing.
    pin_deployment_ip: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(hourly_cap=30))
    pin_deployment: ThrottlePolicy = field(
        default_factory=lambda: ThrottlePolicy(free_failures=300, hourly_cap=300)
    )
    pin_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(10, 50))
    # Mail-sending requests count every call (nothing is "settled"): a few per address an hour.
    mail_address: ThrottlePolicy = field(default_factory=lambda: _ip_policy(3, 5))
    mail_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(10, 30))
    # Presenting a mailed token: failures per IP (a success gives its attempt back).
    token_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(10, 50))


def _ip_policy(free_failures: int, hourly_cap: int) -> ThrottlePolicy:
    return ThrottlePolicy(free_failures=free_failures, hourly_cap=hourly_cap)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    issuer: str = "https://railguard.local"
    audience: str = "railguard"
    access_token_ttl: dt.timedelta = dt.timedelta(minutes=10)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    rotation: RotationPolicy = field(default_factory=RotationPolicy)
    throttle: ThrottlePolicies = field(default_factory=ThrottlePolicies)
    mfa_challenge_ttl: dt.timedelta = dt.timedelta(minutes=5)
    mfa_challenge_attempts: int = 5
    step_up_max_age: dt.timedelta = dt.timedelta(minutes=15)
    totp_issuer: str = "Railguard"
    deployment_token_ttl: dt.timedelta = dt.timedelta(minutes=15)
    deployment_audience: str = "railguard-agent-ui"
    public_url: str = "https://127.0.0.1:8443"
    reset_token_ttl: dt.timedelta = dt.timedelta(minutes=30)
    verify_token_ttl: dt.timedelta = dt.timedelta(hours=24)
    # How long a deleted account's personal data is kept before it is erased (a tombstone stays).
    account_retention: dt.timedelta = dt.timedelta(days=30)
    signup: SignupPolicy = field(default_factory=SignupPolicy)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class ChallengeIssued:
    """A login that needs a second factor: complete it with ``verify_mfa_challenge``."""

    challenge_token: str = field(repr=False)
    expires_in: int
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    otpauth_uri: str = field(repr=False)
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class MfaState:
    totp_enabled: bool
    totp_pending: bool
    totp_enabled_at: dt.datetime | None
    recovery_codes_remaining: int


@dataclass(frozen=True, slots=True)
class DeploymentToken:
    access_token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True, slots=True)
class _Bucket:
    key: str
    policy: ThrottlePolicy


class RefusalThrottle:
    """At most one audited refusal per subject and reason per ``window`` (in memory, per replica).

    Bounded: once ``max_entries`` are held, entries older than the window are dropped, and if
    that is not enough the table is cleared (the worst case is then one event per subject and
    reason per window, which is what the limit allows anyway).
    """

    def __init__(
        self, window: dt.timedelta = dt.timedelta(minutes=1), max_entries: int = 10_000
    ) -> None:
        self._window, self._max = window, max_entries
        self._last: dict[tuple[str, str], dt.datetime] = {}

    def allow(self, subject: str, reason: str, now: dt.datetime) -> bool:
        slot = (subject, reason)
        last = self._last.get(slot)
        if last is not None and now - last < self._window:
            return False
        if slot not in self._last and len(self._last) >= self._max:
            self._last = {k: t for k, t in self._last.items() if now - t < self._window}
            if len(self._last) >= self._max:
                self._last.clear()
        self._last[slot] = now
        return True


def _no_origin() -> AuditOrigin:
    return AuditOrigin(actor="")


def _user_actor(user_id: str) -> str:
    return f"user:{user_id}"


def _user_name(user_id: str) -> str:
    return f"users/{user_id}"


def _session_name(user_id: str, session_id: str) -> str:
    return f"users/{user_id}/sessions/{session_id}"


def _pin_name(workspace_id: str, deployment_id: str) -> str:
    return f"workspaces/{workspace_id}/deployments/{deployment_id}/pin"


_RESERVE_ROUNDS = 50
_PEPPER_NAME = "recovery-code-pepper"
_PEPPER_CONTEXT = "auth/recovery-code-pepper"
_TOKEN_PEPPER_NAME = "account-token-pepper"  # noqa: S105 - a secret's name
_TOKEN_PEPPER_CONTEXT = "auth/account-token-pepper"  # noqa: S105 - a context


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def _ip(client_ip: str) -> str:
    return client_ip[:64] or "-"


def _throttled(reason: str, retry_after: float) -> ResourceExhausted:
    # One message for every throttled key, known account or not.
    return ResourceExhausted(
        "too many attempts; retry later", reason=reason, retry_after=retry_after
    )


def _invalid_mfa_code() -> Unauthenticated:
    return Unauthenticated("the code is invalid or was already used", reason="INVALID_MFA_CODE")


def _invalid_challenge() -> Unauthenticated:
    return Unauthenticated(
        "the MFA challenge is invalid, expired or used up", reason="INVALID_MFA_CHALLENGE"
    )


def _invalid_pin() -> Unauthenticated:
    return Unauthenticated("the deployment or PIN is incorrect", reason="INVALID_PIN")


def _pin_not_set() -> NotFound:
    return NotFound("the deployment has no PIN", reason="PIN_NOT_SET")


def _mfa_not_enabled() -> FailedPrecondition:
    return FailedPrecondition("TOTP is not enabled", reason="MFA_NOT_ENABLED")


def _step_up_required(problem: str, max_age: dt.timedelta) -> PermissionDenied:
    minutes = int(max_age.total_seconds() // 60)
    message = (
        "this action needs a session verified with your second factor (aal2)"
        if problem == "aal2"
        else f"this action needs a login within the last {minutes} minutes; log in again"
    )
    return PermissionDenied(
        message,
        reason="STEP_UP_REQUIRED",
        metadata={
            "required_aal": AAL2 if problem == "aal2" else "",
            "max_age_seconds": str(int(max_age.total_seconds())),
        },
    )


def _invalid_credentials() -> Unauthenticated:
    # One error for unknown email, wrong password and deleted (later: locked) accounts.
    return Unauthenticated(
        "the email address or password is incorrect", reason="INVALID_CREDENTIALS"
    )


def _invalid_refresh() -> Unauthenticated:
    return Unauthenticated(
        "the refresh token is invalid or expired", reason="INVALID_REFRESH_TOKEN"
    )


def _session_not_found() -> NotFound:
    return NotFound("session not found", reason="SESSION_NOT_FOUND")


def _user_not_found() -> NotFound:
    return NotFound("user not found", reason="USER_NOT_FOUND")


def _signing_context(kid: str) -> str:
    return f"auth/signing-key/{kid}"


def _grace_context(token_id: str) -> str:
    return f"auth/refresh-grace/{token_id}"


def _session_cursor(s: Session) -> str:
    return f"{s.created_at.isoformat()}|{s.id}"


def _parse_session_cursor(cursor: str) -> tuple[dt.datetime, str] | None:
    if not cursor:
        return None
    created, _, sid = cursor.partition("|")
    try:
        return dt.datetime.fromisoformat(created), sid
    except ValueError:
        raise InvalidArgument.field(
            "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
        ) from None


class AuthService:
    def __init__(
        self,
        uow: Callable[[], AuthUnitOfWork],
        clock: Clock,
        hasher: PasswordHasher,
        blocklist: Blocklist,
        sealer: Sealer,
        signer: TokenSigner,
        config: AuthConfig,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        *,
        origin: Callable[[], AuditOrigin] = _no_origin,
        after_commit: Callable[[], None] = lambda: None,
        refusals: RefusalThrottle | None = None,
        memberships: Memberships | None = None,
        invitations: Invitations | None = None,
        user_agent: Callable[[], str] = lambda: "",
        read_uow: Callable[[], AuthUnitOfWork] | None = None,
    ) -> None:
        """``origin`` gives the request id, client IP and caller of the RPC being served (for
        audit events); ``after_commit`` runs once an audited change committed (wakes the relay).
        ``read_uow`` (default ``uow``) opens read-only units of work (GetJwks): no transaction."""
        self._uow, self._clock, self._hasher, self._blocklist = uow, clock, hasher, blocklist
        self._read_uow = read_uow or uow
        self._sealer, self._signer, self._config, self._new_id = sealer, signer, config, new_id
        self._origin, self._after_commit = origin, after_commit
        self._refusals = refusals or RefusalThrottle()
        self._memberships = memberships
        self._invitations = invitations
        self._user_agent = user_agent
        self._private_keys: dict[str, bytes] = {}
        self._recovery_pepper: bytes | None = None
        self._peppers: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "AuthService()"

    # ---- audit -------------------------------------------------------------------------------

    def _event(
        self,
        action: str,
        target: str,
        *,
        actor: str,
        workspace_id: str = "",
        outcome: Outcome = Outcome.SUCCESS,
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """An event of the call being served; only ids, counts and reasons go in ``metadata``.
        A new session's event also carries the client's user agent (for the security log)."""
        origin = self._origin()
        if metadata and "session_id" in metadata and action in _SESSION_STARTS:
            agent = _safe_user_agent(self._user_agent())
            if agent:
                metadata = {**metadata, "user_agent": agent}
        return AuditEvent.new(
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            target=target,
            time=self._clock.now(),
            outcome=outcome,
            request_id=origin.request_id,
            client_ip=(origin.client_ip or client_ip)[:64],
            metadata=metadata,
        )

    def _caller(self) -> str:
        """The acting user or API key of the call being served, else ``system``."""
        actor = self._origin().actor
        return actor if actor.startswith(("user:", "apiKey:")) else "system"

    async def _audit(
        self,
        uow: AuthUnitOfWork,
        action: str,
        target: str,
        *,
        actor: str,
        workspace_id: str = "",
        outcome: Outcome = Outcome.SUCCESS,
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Record an event inside the caller's transaction (it commits with the change)."""
        await uow.outbox.record(
            self._event(
                action,
                target,
                actor=actor,
                workspace_id=workspace_id,
                outcome=outcome,
                client_ip=client_ip,
                metadata=metadata,
            )
        )

    async def _audit_refusal(
        self,
        subject: str,
        reason: str,
        action: str,
        target: str,
        *,
        actor: str,
        workspace_id: str = "",
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Record a refusal (outcome DENIED) in its own transaction, throttled per subject and
        reason; never raises: the refusal stands whether or not it is recorded."""
        if not self._refusals.allow(f"{action}:{subject}", reason, self._clock.now()):
            return
        try:
            event = self._event(
                action,
                target,
                actor=actor,
                workspace_id=workspace_id,
                outcome=Outcome.DENIED,
                client_ip=client_ip,
                metadata={"reason": reason, **(metadata or {})},
            )
            async with self._uow() as uow:
                await uow.outbox.record(event)
                await uow.commit()
        except Exception:  # noqa: BLE001 - an audit hiccup must not change the answer
            _log.warning("could not record a refused attempt", exc_info=True)
            return
        self._after_commit()

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
            async with self._uow() as uow:
                user = await uow.users.by_email(address)
        known = user is not None and not user.deleted
        await self._audit_refusal(
            _digest(address),
            reason if known or reason == "LOGIN_THROTTLED" else "UNKNOWN_ACCOUNT",
            "user.login",
            _user_name(user.id) if known and user is not None else "users/-",
            actor=_user_actor(user.id) if known and user is not None else "anonymous",
            client_ip=client_ip,
        )

    # ---- users -------------------------------------------------------------------------------

    async def sign_up(
        self, email: str, password: str, display_name: str, client_ip: str = ""
    ) -> User:
        """Create an unverified account and mail it a verification link.

        The answer is the same whether or not the address is registered: for a registered
        address nothing is created, its owner is mailed instead, and the user returned is a
        stand-in that names no account. The password is hashed either way (same timing).
        Limited per address (the edge limits the auth class per client IP).
        """
        address = validate_email(email)
        name = validate_display_name(display_name)
        normalized = check_password(password, address, self._blocklist)
        await self._check_signup_policy(address)
        # Per address (a victim's mailbox is not flooded); per IP the edge's auth class limits.
        await self._reserve(
            self._mail_buckets("signup", address, client_ip)[1:], "SIGNUP_THROTTLED"
        )
        hashed = await self._hasher.hash(normalized)
        token, digest = await self._mint(VERIFY_EMAIL)
        now = self._clock.now()
        user = User(self._new_id(), address, name, hashed, now, now)
        stand_in = User(user.id, address, name, "", now, now)
        async with self._uow() as uow:
            existing = await uow.users.by_email(address)
            if existing is not None:
                if not existing.deleted:
                    await self._send(
                        uow,
                        address,
                        "account-exists",
                        mails.account_exists(self._config.public_url),
                    )
                    await self._audit(
                        uow,
                        "user.signUp",
                        _user_name(existing.id),
                        actor="system",
                        outcome=Outcome.DENIED,
                        client_ip=client_ip,
                        metadata={"reason": "EMAIL_TAKEN"},
                    )
                    await uow.commit()
                    self._after_commit()
                return stand_in
            try:
                await uow.users.add(user)  # the unique index settles a concurrent sign-up
            except AlreadyExists:
                return stand_in
            await self._store_token(
                uow, VERIFY_EMAIL, digest, user.id, address, self._config.verify_token_ttl
            )
            await self._send(
                uow,
                address,
                "verify-email",
                mails.verify_email(self._config.public_url, token, self._config.verify_token_ttl),
            )
            await self._audit(
                uow,
                "user.signUp",
                _user_name(user.id),
                actor=_user_actor(user.id),
                client_ip=client_ip,
            )
            await uow.commit()
        self._after_commit()
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
        user = await self.current_user(user_id)
        if user.email_verified:
            raise FailedPrecondition(
                "the email address is already verified", reason="EMAIL_ALREADY_VERIFIED"
            )
        await self._reserve(self._mail_buckets("verify", user.email, client_ip), "MAIL_THROTTLED")
        token, digest = await self._mint(VERIFY_EMAIL)
        async with self._uow() as uow:
            await self._store_token(
                uow, VERIFY_EMAIL, digest, user.id, user.email, self._config.verify_token_ttl
            )
            await self._send(
                uow,
                user.email,
                "verify-email",
                mails.verify_email(self._config.public_url, token, self._config.verify_token_ttl),
            )
            await uow.commit()
        self._after_commit()

    async def change_email(
        self, user_id: str, new_email: str, assurance: Assurance, client_ip: str = ""
    ) -> None:
        """Mail a confirmation link to ``new_email``; the address changes when it is opened.

        Needs step-up (a recent login; aal2 with a factor). A new address that is already
        registered gets a notice instead of a link, and the caller the same answer.
        """
        user = await self.current_user(user_id)
        async with self._uow() as uow:
            has_factor = await uow.totp.has_confirmed(user_id)
        self._require_step_up(assurance, has_factor)
        address = validate_email(new_email, "new_email")
        if address == user.email:
            raise InvalidArgument.field(
                "new_email", "is already your address", reason="EMAIL_UNCHANGED"
            )
        await self._reserve(self._mail_buckets("change", address, client_ip), "MAIL_THROTTLED")
        token, digest = await self._mint(CHANGE_EMAIL)
        async with self._uow() as uow:
            taken = await uow.users.by_email(address) is not None
            if taken:
                await self._send(
                    uow, address, "account-exists", mails.account_exists(self._config.public_url)
                )
            else:
                await self._store_token(
                    uow, CHANGE_EMAIL, digest, user.id, address, self._config.verify_token_ttl
                )
                await self._send(
                    uow,
                    address,
                    "confirm-email-change",
                    mails.confirm_email_change(
                        self._config.public_url, token, self._config.verify_token_ttl
                    ),
                )
            await self._audit(
                uow,
                "user.requestEmailChange",
                _user_name(user.id),
                actor=_user_actor(user.id),
                client_ip=client_ip,
            )
            await uow.commit()
        self._after_commit()

    async def verify_email(self, token: str, client_ip: str = "") -> None:
        """Open a verification link: of sign-up (the address becomes verified) or of an email
        change (the account moves to the new, verified address; the old one is told)."""
        ip = _Bucket(f"token:ip:{_ip(client_ip)}", self._config.throttle.token_ip)
        await self._reserve([ip], "TOKEN_THROTTLED")
        if not account_token_well_formed(token):
            raise _invalid_token()
        record: AccountToken | None = None
        for purpose in (VERIFY_EMAIL, CHANGE_EMAIL):
            digest = await self._token_digest(purpose, token)
            async with self._uow() as uow:
                record = await uow.tokens.by_hash(digest, purpose)
            if record is not None:
                break
        now = self._clock.now()
        if record is None or not record.usable(now):
            raise _invalid_token()
        async with self._uow() as uow:
            user = await uow.users.get(record.user_id)
        if user is None or user.deleted:
            raise _invalid_token()
        async with self._uow() as uow:
            if not await uow.tokens.consume(record.id, now):
                raise _invalid_token()
            if record.purpose == VERIFY_EMAIL:
                if not await uow.users.mark_verified(user.id, record.email, now):
                    raise _invalid_token()  # the address changed since the mail was sent
                action, metadata = "user.verifyEmail", {}
            else:
                if not await uow.users.change_email(user.id, record.email, now):
                    raise _invalid_token()  # taken meanwhile
                await uow.tokens.retire(user.id, (PASSWORD_RESET, VERIFY_EMAIL), now)
                await self._send(
                    uow, user.email, "email-changed", mails.email_changed(record.email, now)
                )
                action, metadata = "user.changeEmail", {"change_id": record.id}
            await self._audit(
                uow,
                action,
                _user_name(user.id),
                actor=_user_actor(user.id),
                client_ip=client_ip,
                metadata=metadata,
            )
            await uow.commit()
        self._after_commit()
        await self._settle(refund=[ip])

    async def current_user(self, user_id: str) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or user.deleted:
            raise _user_not_found()
        return user

    async def lookup_user(self, email: str, user_id: str) -> User:
        if bool(email) == bool(user_id):
            raise InvalidArgument("set exactly one of email and user_id", reason="INVALID_LOOKUP")
        async with self._uow() as uow:
            user = (
                await uow.users.by_email(lookup_email(email))
                if email
                else await uow.users.get(user_id)
            )
        if user is None or user.deleted:
            raise _user_not_found()
        return user

    async def delete_user(self, user_id: str) -> None:
        """Soft-delete an account and end its sessions (no RPC yet; purge comes later)."""
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.users.mark_deleted(user_id, now)
            revoked = await uow.sessions.revoke_all(user_id, now, "account_deleted")
            await self._audit(
                uow,
                "user.delete",
                _user_name(user_id),
                actor=self._caller(),
                metadata={"sessions_revoked": str(revoked)},
            )
            await uow.commit()
        self._after_commit()

    async def delete_account(self, user_id: str, assurance: Assurance) -> None:
        """The user deletes their own account: step-up first (a recent login; aal2 with a
        factor), refused while they are the last Owner of a workspace (the error names them),
        then every membership goes (workspaces service), every session and open challenge
        ends, live mailed tokens die, and a notice is mailed. Personal data stays for
        ``account_retention`` and is then erased by ``purge_deleted_accounts``."""
        user = await self.current_user(user_id)
        async with self._uow() as uow:
            has_factor = await uow.totp.has_confirmed(user_id)
        self._require_step_up(assurance, has_factor)
        if self._memberships is None:
            raise FailedPrecondition("account deletion is not enabled", reason="NOT_ENABLED")
        blocking = await self._memberships.remove_all(user_id)
        if blocking:
            named = ", ".join(f"{display} ({name})" for name, display in blocking[:5])
            if len(blocking) > 5:
                named += f" and {len(blocking) - 5} more"
            raise FailedPrecondition(
                f"you are the last Owner of {named}: transfer ownership or delete "
                "the workspace first",
                reason="LAST_OWNER",
                metadata={"workspaces": ",".join(name for name, _ in blocking[:5])},
            )
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.users.mark_deleted(user_id, now)
            revoked = await uow.sessions.revoke_all(user_id, now, "account_deleted")
            await uow.challenges.consume_all(user_id, now)
            await uow.tokens.retire(user_id, (PASSWORD_RESET, VERIFY_EMAIL, CHANGE_EMAIL), now)
            await self._send(
                uow,
                user.email,
                "account-deleted",
                mails.account_deleted(now, self._config.account_retention.days),
            )
            await self._audit(
                uow,
                "user.delete",
                _user_name(user_id),
                actor=_user_actor(user_id),
                metadata={"sessions_revoked": str(revoked), "by": "self"},
            )
            await uow.commit()
        self._after_commit()
        _log.info("account deleted", extra={"user_id": user_id, "sessions_revoked": revoked})

    async def purge_deleted_accounts(self, batch: int = 100) -> int:
        """Erase the personal data of accounts deleted longer ago than the retention window,
        leaving a tombstone (id kept, address freed); the number erased."""
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.users.deleted_before(now - self._config.account_retention, batch)
        erased = 0
        for user_id in due:
            async with self._uow() as uow:
                if await uow.users.erase(user_id, now):
                    await self._audit(uow, "user.purge", _user_name(user_id), actor="system")
                    await uow.commit()
                    erased += 1
        if erased:
            self._after_commit()
        return erased

    # ---- login, refresh, logout --------------------------------------------------------------

    async def login(
        self, email: str, password: str, client_ip: str = ""
    ) -> TokenPair | ChallengeIssued:
        """Tokens (aal1), or an MFA challenge when the user has a confirmed factor.

        Throttled per account (keyed by the normalised email, so an unknown account is
        throttled exactly like a known one) and per client IP, before any password work.
        """
        normalized = normalize_password(password)
        address = lookup_email(email)
        account = self._login_account_bucket(address)
        ip = _Bucket(f"login:ip:{_ip(client_ip)}", self._config.throttle.login_ip)
        try:
            await self._reserve([ip, account], "LOGIN_THROTTLED")
        except ResourceExhausted:
            await self._audit_login_refusal(address, "LOGIN_THROTTLED", client_ip)
            raise
        async with self._uow() as uow:
            user = await uow.users.by_email(address)
        if user is None or user.deleted:
            await self._hasher.verify_dummy(normalized)
            await self._audit_login_refusal(
                address, "INVALID_PASSWORD", client_ip, user, looked_up=True
            )
            raise _invalid_credentials()
        if not await self._hasher.verify(user.password_hash, normalized):
            await self._audit_login_refusal(
                address, "INVALID_PASSWORD", client_ip, user, looked_up=True
            )
            raise _invalid_credentials()
        await self._settle(reset=[account], refund=[ip])
        upgraded = (
            await self._hasher.hash(normalized)
            if self._hasher.needs_rehash(user.password_hash)
            else None
        )
        now = self._clock.now()
        async with self._uow() as uow:
            fresh = await uow.users.get(user.id)
            # The password may have changed, or the account been deleted, while we verified.
            if fresh is None or fresh.deleted or not _same(fresh.password_hash, user.password_hash):
                raise _invalid_credentials()
            if upgraded is not None:
                await uow.users.replace_password_hash(user.id, user.password_hash, upgraded, now)
            if await uow.totp.has_confirmed(user.id):
                issued, challenge_id = await self._issue_challenge(uow, user.id, now, client_ip)
                await self._audit(
                    uow,
                    "user.login",
                    _user_name(user.id),
                    actor=_user_actor(user.id),
                    client_ip=client_ip,
                    metadata={
                        "method": "password",
                        "mfa_required": "true",
                        "challenge_id": challenge_id,
                    },
                )
                await uow.commit()
                self._after_commit()
                return issued
            session = Session.begin(self._new_id(), user.id, now, self._config.sessions, client_ip)
            refresh = new_refresh_token()
            await uow.sessions.add(session)
            await uow.refresh_tokens.add(
                RefreshRecord(self._new_id(), session.id, token_hash(refresh), now)
            )
            await self._audit(
                uow,
                "user.login",
                _user_name(user.id),
                actor=_user_actor(user.id),
                client_ip=client_ip,
                metadata={"method": "password", "session_id": session.id, "aal": session.aal},
            )
            await uow.commit()
        self._after_commit()
        return await self._pair(session, refresh, now)

    async def _issue_challenge(
        self, uow: AuthUnitOfWork, user_id: str, now: dt.datetime, client_ip: str
    ) -> tuple[ChallengeIssued, str]:
        token = new_challenge_token()
        ttl = self._config.mfa_challenge_ttl
        challenge_id = self._new_id()
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

    # ---- MFA ---------------------------------------------------------------------------------

    async def verify_mfa_challenge(
        self, challenge_token: str, totp_code: str, recovery_code: str, client_ip: str = ""
    ) -> TokenPair:
        """The second login step: a TOTP code or a recovery code against a live challenge."""
        if bool(totp_code) == bool(recovery_code):
            raise InvalidArgument(
                "set exactly one of totp_code and recovery_code", reason="INVALID_MFA_REQUEST"
            )
        if not challenge_well_formed(challenge_token):
            raise _invalid_challenge()
        ip = _Bucket(f"mfa:ip:{_ip(client_ip)}", self._config.throttle.mfa_ip)
        now = self._clock.now()
        async with self._uow() as uow:
            challenge = await uow.challenges.by_hash(challenge_hash(challenge_token))
        if challenge is None or not challenge.usable(now, self._config.mfa_challenge_attempts):
            await self._reserve([ip], "MFA_THROTTLED")
            raise _invalid_challenge()
        user_id = challenge.user_id
        method = METHOD_TOTP if totp_code else METHOD_RECOVERY
        user_bucket = self._mfa_user_bucket(user_id)
        try:
            await self._reserve([ip, user_bucket], "MFA_THROTTLED")
        except ResourceExhausted:
            await self._audit_mfa_refusal(user_id, "MFA_THROTTLED", method, client_ip)
            raise
        async with self._uow() as uow:
            taken = await uow.challenges.count_attempt(
                challenge.id, now, self._config.mfa_challenge_attempts
            )
            await uow.commit()
        if not taken:
            raise _invalid_challenge()
        step: int | None = None
        recovery_digest = ""
        factor: TotpFactor | None = None
        if totp_code:
            async with self._uow() as uow:
                factor = await uow.totp.for_user(user_id)
            if factor is None or not factor.confirmed:
                raise _invalid_mfa_code()
            step = await self._match(factor, totp_code, now)
            if step is None:
                _log.info("mfa verification failed", extra={"user_id": user_id, "method": "totp"})
                await self._audit_mfa_refusal(user_id, "INVALID_MFA_CODE", method, client_ip)
                raise _invalid_mfa_code()
        else:
            folded = fold_recovery_code(recovery_code)
            if folded is None:
                await self._audit_mfa_refusal(user_id, "INVALID_MFA_CODE", method, client_ip)
                raise _invalid_mfa_code()
            recovery_digest = recovery_code_hash(await self._pepper(), folded)
        amr = (AMR_PASSWORD, AMR_OTP if totp_code else AMR_RECOVERY)
        session = Session.begin(
            self._new_id(), user_id, now, self._config.sessions, client_ip, aal=AAL2, amr=amr
        )
        refresh = new_refresh_token()
        failure = ""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None or user.deleted:
                raise _invalid_challenge()
            if not await uow.challenges.consume(challenge.id, now):
                raise _invalid_challenge()
            if factor is not None and step is not None:
                if not await uow.totp.consume_step(factor.id, step):
                    _log.warning(
                        "totp code replay refused", extra={"user_id": user_id, "step": step}
                    )
                    failure = "TOTP_REPLAY"
            elif not await uow.recovery_codes.consume(user_id, recovery_digest, now):
                _log.info(
                    "mfa verification failed", extra={"user_id": user_id, "method": "recovery"}
                )
                failure = "INVALID_MFA_CODE"
            if not failure:
                await uow.sessions.add(session)
                await uow.refresh_tokens.add(
                    RefreshRecord(self._new_id(), session.id, token_hash(refresh), now)
                )
                await self._audit(
                    uow,
                    "user.verifyMfa",
                    _user_name(user_id),
                    actor=_user_actor(user_id),
                    client_ip=client_ip,
                    metadata={
                        "method": method,
                        "session_id": session.id,
                        "aal": session.aal,
                        "challenge_id": challenge.id,
                    },
                )
                if not totp_code:
                    await self._audit(
                        uow,
                        "recoveryCode.use",
                        _user_name(user_id),
                        actor=_user_actor(user_id),
                        client_ip=client_ip,
                        metadata={
                            "session_id": session.id,
                            "remaining": str(await uow.recovery_codes.remaining(user_id)),
                        },
                    )
                await uow.commit()
        if failure:
            # the transaction rolled back: the challenge was not consumed, no session exists
            await self._audit_mfa_refusal(user_id, failure, method, client_ip)
            raise _invalid_mfa_code()
        self._after_commit()
        if not totp_code:
            _log.warning("recovery code used", extra={"user_id": user_id})
        await self._settle(reset=[user_bucket], refund=[ip])
        return await self._pair(session, refresh, now)

    async def _audit_mfa_refusal(
        self, user_id: str, reason: str, method: str, client_ip: str
    ) -> None:
        await self._audit_refusal(
            user_id,
            reason,
            "user.verifyMfa",
            _user_name(user_id),
            actor=_user_actor(user_id),
            client_ip=client_ip,
            metadata={"method": method},
        )

    async def mfa_status(self, user_id: str) -> MfaState:
        async with self._uow() as uow:
            factor = await uow.totp.for_user(user_id)
            remaining = await uow.recovery_codes.remaining(user_id)
        return MfaState(
            totp_enabled=factor is not None and factor.confirmed,
            totp_pending=factor is not None and not factor.confirmed,
            totp_enabled_at=factor.confirmed_at if factor else None,
            recovery_codes_remaining=remaining if factor and factor.confirmed else 0,
        )

    async def begin_totp_enrollment(self, user_id: str, assurance: Assurance) -> TotpEnrollment:
        user = await self.current_user(user_id)
        async with self._uow() as uow:
            has_factor = await uow.totp.has_confirmed(user_id)
        self._require_step_up(assurance, has_factor)
        if has_factor:
            raise FailedPrecondition(
                "TOTP is already enabled; disable it first to enroll a new one",
                reason="MFA_ALREADY_ENABLED",
            )
        secret = totp_rules.new_secret()
        factor_id = self._new_id()
        sealed = await self._sealer.encrypt(secret, totp_context(user_id, factor_id))
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.totp.replace_pending(
                TotpFactor(factor_id, user_id, sealed, now, None, 0)
            ):
                raise FailedPrecondition(
                    "TOTP was enabled concurrently", reason="MFA_ALREADY_ENABLED"
                )
            await self._audit(
                uow,
                "totp.enroll",
                _user_name(user_id),
                actor=_user_actor(user_id),
                metadata={"factor_id": factor_id},
            )
            await uow.commit()
        self._after_commit()
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
            raise FailedPrecondition("the call carries no session", reason="NO_SESSION")
        async with self._uow() as uow:
            factor = await uow.totp.for_user(user_id)
            current = await uow.sessions.get(session_id)
            owner = await uow.users.get(user_id)
        user_email = owner.email if owner is not None else ""
        if factor is None or factor.confirmed:
            raise FailedPrecondition(
                "no TOTP enrollment is pending; begin one first", reason="NO_PENDING_ENROLLMENT"
            )
        now = self._clock.now()
        if current is None or current.user_id != user_id or not current.active(now):
            raise Unauthenticated("the session has ended", reason="SESSION_ENDED")
        ip = _Bucket(f"mfa:ip:{_ip(client_ip)}", self._config.throttle.mfa_ip)
        user_bucket = self._mfa_user_bucket(user_id)
        await self._reserve([ip, user_bucket], "MFA_THROTTLED")
        step = await self._match(factor, code, now)
        if step is None:
            raise InvalidArgument.field(
                "code", "is incorrect or expired", reason="INVALID_MFA_CODE"
            )
        codes = new_recovery_codes()
        pepper = await self._pepper()
        hashes = [recovery_code_hash(pepper, c.replace("-", "")) for c in codes]
        session = Session.begin(
            self._new_id(),
            user_id,
            now,
            self._config.sessions,
            client_ip,
            aal=AAL2,
            amr=(AMR_PASSWORD, AMR_OTP),
        )
        refresh = new_refresh_token()
        async with self._uow() as uow:
            if not await uow.totp.confirm(factor.id, step, now):
                raise InvalidArgument.field(
                    "code", "is incorrect or expired", reason="INVALID_MFA_CODE"
                )
            await uow.recovery_codes.replace(user_id, hashes, now, self._new_id)
            revoked = await uow.sessions.revoke_all(user_id, now, "mfa_enabled", aal=AAL1)
            await uow.sessions.add(session)
            await uow.refresh_tokens.add(
                RefreshRecord(self._new_id(), session.id, token_hash(refresh), now)
            )
            if user_email:
                await self._send(uow, user_email, "factor-added", mails.factor_added(now))
            await self._audit(
                uow,
                "totp.confirm",
                _user_name(user_id),
                actor=_user_actor(user_id),
                client_ip=client_ip,
                metadata={
                    "factor_id": factor.id,
                    "session_id": session.id,
                    "sessions_revoked": str(revoked),
                },
            )
            await uow.commit()
        self._after_commit()
        _log.info(
            "totp enabled",
            extra={"user_id": user_id, "factor_id": factor.id, "sessions_revoked": revoked},
        )
        await self._settle(reset=[user_bucket], refund=[ip])
        return codes, await self._pair(session, refresh, now)

    async def disable_totp(self, user_id: str, assurance: Assurance) -> None:
        async with self._uow() as uow:
            factor = await uow.totp.for_user(user_id)
        if factor is None:
            raise _mfa_not_enabled()
        self._require_step_up(assurance, factor.confirmed)
        async with self._uow() as uow:
            await uow.totp.remove(user_id)
            await uow.recovery_codes.remove(user_id)
            owner = await uow.users.get(user_id)
            if factor.confirmed and owner is not None:
                await self._send(
                    uow, owner.email, "factor-removed", mails.factor_removed(self._clock.now())
                )
            await self._audit(
                uow,
                "totp.disable",
                _user_name(user_id),
                actor=_user_actor(user_id),
                metadata={"factor_id": factor.id, "confirmed": str(factor.confirmed).lower()},
            )
            await uow.commit()
        self._after_commit()
        _log.warning("totp disabled", extra={"user_id": user_id, "factor_id": factor.id})

    async def regenerate_recovery_codes(self, user_id: str, assurance: Assurance) -> list[str]:
        async with self._uow() as uow:
            has_factor = await uow.totp.has_confirmed(user_id)
        if not has_factor:
            raise _mfa_not_enabled()
        self._require_step_up(assurance, has_factor)
        codes = new_recovery_codes()
        pepper = await self._pepper()
        hashes = [recovery_code_hash(pepper, c.replace("-", "")) for c in codes]
        async with self._uow() as uow:
            await uow.recovery_codes.replace(user_id, hashes, self._clock.now(), self._new_id)
            await self._audit(
                uow,
                "recoveryCodes.regenerate",
                _user_name(user_id),
                actor=_user_actor(user_id),
                metadata={"count": str(len(codes))},
            )
            await uow.commit()
        self._after_commit()
        _log.info("recovery codes regenerated", extra={"user_id": user_id})
        return codes

    async def _match(self, factor: TotpFactor, code: str, now: dt.datetime) -> int | None:
        if not totp_rules.well_formed_code(code):
            return None
        secret = await self._sealer.decrypt(
            factor.sealed_secret, totp_context(factor.user_id, factor.id)
        )
        step = totp_rules.match_step(secret, code, totp_rules.time_step(now.timestamp()))
        # The step must be newer than the last accepted one (checked again, atomically, on write).
        return step if step is not None and step > factor.last_step else None

    def _require_step_up(self, assurance: Assurance, has_factor: bool) -> None:
        problem = step_up_problem(
            assurance, has_factor, self._clock.now(), self._config.step_up_max_age
        )
        if problem is not None:
            raise _step_up_required(problem, self._config.step_up_max_age)

    async def _pepper(self) -> bytes:
        """The recovery-code HMAC key: 256 random bits, sealed by the key manager, made once."""
        if self._recovery_pepper is None:
            self._recovery_pepper = await self._sealed_secret(_PEPPER_NAME, _PEPPER_CONTEXT)
        return self._recovery_pepper

    async def _sealed_secret(self, name: str, context: str) -> bytes:
        """A named service secret: 256 random bits, sealed by the key manager, made once."""
        if name in self._peppers:
            return self._peppers[name]
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
        self._peppers[name] = await self._sealer.decrypt(sealed, context)
        return self._peppers[name]

    # ---- throttling --------------------------------------------------------------------------

    def _login_account_bucket(self, address: str) -> _Bucket:
        return _Bucket(f"login:acct:{_digest(address)}", self._config.throttle.login_account)

    def _mfa_user_bucket(self, user_id: str) -> _Bucket:
        return _Bucket(f"mfa:user:{user_id}", self._config.throttle.mfa_user)

    async def _reserve(self, buckets: list[_Bucket], reason: str) -> None:
        """Count one attempt on every bucket, or refuse (and give back what was taken)."""
        taken: list[_Bucket] = []
        for bucket in buckets:
            retry_after = await self._reserve_one(bucket)
            if retry_after is not None:
                await self._settle(refund=taken)
                raise _throttled(reason, retry_after)
            taken.append(bucket)

    async def _reserve_one(self, bucket: _Bucket) -> float | None:
        for round_ in range(_RESERVE_ROUNDS):
            now = self._clock.now()
            async with self._uow() as uow:
                state = await uow.throttle.get(bucket.key)
                decision = admit(bucket.policy, state, now)
                if not decision.allowed:
                    return decision.retry_after
                if await uow.throttle.store(bucket.key, state, decision.state):
                    await uow.commit()
                    if decision.started_block:
                        # Audit hook: a backoff (lockout) started on this key.
                        _log.warning(
                            "attempts throttled",
                            extra={
                                "throttle_key": bucket.key,
                                "failures": decision.state.failures,
                            },
                        )
                    return None
            await asyncio.sleep(0.001 * (round_ % 10))
        return 1.0  # contention beyond reason: fail closed

    async def _settle(
        self, *, reset: list[_Bucket] | None = None, refund: list[_Bucket] | None = None
    ) -> None:
        """After a success: clear ``reset`` counters, give back this attempt on ``refund``."""
        async with self._uow() as uow:
            for bucket in reset or []:
                await uow.throttle.reset(bucket.key)
            for bucket in refund or []:
                await uow.throttle.refund(bucket.key)
            await uow.commit()

    async def purge_expired(self) -> None:
        """Drop dead MFA challenges and idle throttle counters (maintenance)."""
        now = self._clock.now()
        idle = max(
            self._config.throttle.login_account.reset_after,
            self._config.throttle.login_ip.reset_after,
        )
        async with self._uow() as uow:
            await uow.challenges.purge(now - dt.timedelta(hours=1))
            await uow.tokens.purge(now - dt.timedelta(days=1))
            await uow.throttle.purge(now - idle, now)
            await uow.commit()
        await self.purge_deleted_accounts()

    # ---- deployment PINs ---------------------------------------------------------------------

    async def set_deployment_pin(
        self, workspace_id: str, deployment_id: str, pin: str
    ) -> DeploymentPin:
        hashed = await self._hasher.hash(check_pin(pin))
        now = self._clock.now()
        async with self._uow() as uow:
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
            await uow.throttle.reset(self._pin_bucket(workspace_id, deployment_id).key)
            await self._audit(
                uow,
                "deploymentPin.set",
                _pin_name(workspace_id, deployment_id),
                actor=self._caller(),
                workspace_id=workspace_id,
                metadata={
                    "deployment_id": deployment_id,
                    "replaced": str(existing is not None).lower(),
                },
            )
            await uow.commit()
        self._after_commit()
        _log.info(
            "deployment pin set",
            extra={"workspace_id": workspace_id, "deployment_id": deployment_id},
        )
        return record

    async def get_deployment_pin(self, workspace_id: str, deployment_id: str) -> DeploymentPin:
        async with self._uow() as uow:
            record = await uow.pins.get(workspace_id, deployment_id)
        if record is None:
            raise _pin_not_set()
        return record

    async def clear_deployment_pin(self, workspace_id: str, deployment_id: str) -> None:
        async with self._uow() as uow:
            removed = await uow.pins.remove(workspace_id, deployment_id)
            if not removed:
                raise _pin_not_set()
            await self._audit(
                uow,
                "deploymentPin.clear",
                _pin_name(workspace_id, deployment_id),
                actor=self._caller(),
                workspace_id=workspace_id,
                metadata={"deployment_id": deployment_id},
            )
            await uow.commit()
        self._after_commit()
        _log.info(
            "deployment pin cleared",
            extra={"workspace_id": workspace_id, "deployment_id": deployment_id},
        )

    async def verify_deployment_pin(
        self, workspace_id: str, deployment_id: str, pin: str, client_ip: str = ""
    ) -> DeploymentToken:
        """A deployment token for the right PIN; an unknown deployment answers like a wrong PIN."""
        ip = _Bucket(f"pin:ip:{_ip(client_ip)}", self._config.throttle.pin_ip)
        deployment = self._pin_bucket(workspace_id, deployment_id)
        pair = _Bucket(
            f"pin:depip:{workspace_id}/{deployment_id}/{_ip(client_ip)}",
            self._config.throttle.pin_deployment_ip,
        )
        try:
            await self._reserve([ip, pair, deployment], "PIN_THROTTLED")
        except ResourceExhausted:
            async with self._uow() as uow:
                known = await uow.pins.get(workspace_id, deployment_id)
            if known is not None:
                await self._audit_pin_refusal(known, "PIN_THROTTLED", client_ip)
            raise
        async with self._uow() as uow:
            record = await uow.pins.get(workspace_id, deployment_id)
        candidate = pin if len(pin) <= 64 else pin[:64]
        if record is None or not well_formed_pin(pin):
            await self._hasher.verify_dummy(candidate)
            if record is not None:
                await self._audit_pin_refusal(record, "INVALID_PIN", client_ip)
            raise _invalid_pin()
        if not await self._hasher.verify(record.pin_hash, candidate):
            await self._audit_pin_refusal(record, "INVALID_PIN", client_ip)
            raise _invalid_pin()
        # A success gives back its own attempt but does not wipe the deployment's failures:
        # a PIN shared by many people must not let a guesser ride on their successes.
        await self._settle(refund=[ip, pair, deployment])
        now = self._clock.now()
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
        kid, private = await self._signing_key()
        return DeploymentToken(self._signer.sign(claims, private, kid, "dep+jwt"), ttl)

    async def _audit_pin_refusal(self, record: DeploymentPin, reason: str, client_ip: str) -> None:
        """A refused PIN of a deployment that has one (never for an unknown deployment: its
        ids are the caller's choice), at most one per deployment and reason per minute."""
        await self._audit_refusal(
            f"{record.workspace_id}/{record.deployment_id}",
            reason,
            "deploymentPin.verify",
            _pin_name(record.workspace_id, record.deployment_id),
            actor=self._caller(),
            workspace_id=record.workspace_id,
            client_ip=client_ip,
            metadata={"deployment_id": record.deployment_id},
        )

    def _pin_bucket(self, workspace_id: str, deployment_id: str) -> _Bucket:
        return _Bucket(
            f"pin:dep:{workspace_id}/{deployment_id}", self._config.throttle.pin_deployment
        )

    async def refresh(self, token: str) -> TokenPair:
        if not well_formed(token):
            raise _invalid_refresh()
        digest = token_hash(token)
        # Two passes at most: a caller that loses the rotation race re-reads the winner's result
        # and is answered through the grace path, with the same child.
        for _ in range(2):
            now = self._clock.now()
            async with self._uow() as uow:
                record = await uow.refresh_tokens.by_hash(digest)
                if record is None:
                    raise _invalid_refresh()
                session = await uow.sessions.get(record.session_id)
                if session is None or not session.active(now):
                    raise _invalid_refresh()
                user = await uow.users.get(session.user_id)
                if user is None or user.deleted:
                    raise _invalid_refresh()
                if not record.rotated:
                    child = new_refresh_token()
                    child_id = self._new_id()
                    sealed = await self._sealer.encrypt(child.encode(), _grace_context(child_id))
                    if await uow.refresh_tokens.claim(record.id, now, child_id, sealed):
                        await uow.refresh_tokens.add(
                            RefreshRecord(child_id, session.id, token_hash(child), now)
                        )
                        session.touch(now, self._config.sessions)
                        await uow.sessions.save(session)
                        await uow.refresh_tokens.forget_grace_secrets(
                            now - self._config.sessions.grace, session.id
                        )
                        await uow.commit()
                        return await self._pair(session, child, now)
                    continue
                current_child = (
                    await uow.refresh_tokens.get(record.child_id) if record.child_id else None
                )
                if (
                    classify_replay(record, current_child, now, self._config.sessions.grace)
                    is Replay.GRACE
                ):
                    assert record.sealed_child is not None and record.child_id is not None
                    plain = await self._sealer.decrypt(
                        record.sealed_child, _grace_context(record.child_id)
                    )
                    return await self._pair(session, plain.decode(), now)
                session.revoke(now, "refresh_token_reuse")
                await uow.sessions.save(session)
                # The key security event: a rotated-out token came back, so one of its holders
                # is not the user; the whole family (the session) is revoked.
                await self._audit(
                    uow,
                    "refreshToken.reuse",
                    _session_name(session.user_id, session.id),
                    actor="system",
                    outcome=Outcome.DENIED,
                    metadata={
                        "session_id": session.id,
                        "user_id": session.user_id,
                        "reason": "refresh_token_reuse",
                        "family_revoked": "true",
                    },
                )
                await uow.commit()
                self._after_commit()
                _log.warning(
                    "refresh token reuse: session revoked",
                    extra={"session_id": session.id, "user_id": session.user_id},
                )
                raise _invalid_refresh()
        raise _invalid_refresh()

    async def logout(self, user_id: str, session_id: str) -> None:
        if not session_id:
            raise FailedPrecondition("the call carries no session", reason="NO_SESSION")
        now = self._clock.now()
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
            if session is None or session.user_id != user_id:
                raise _session_not_found()
            session.revoke(now, "logout")
            await uow.sessions.save(session)
            await self._audit(
                uow,
                "user.logout",
                _session_name(user_id, session_id),
                actor=_user_actor(user_id),
                metadata={"session_id": session_id},
            )
            await uow.commit()
        self._after_commit()

    # ---- sessions ----------------------------------------------------------------------------

    async def list_sessions(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[Session], str]:
        query = f"sessions:{user_id}"
        page = page_request(page_size, page_token, query)
        after = _parse_session_cursor(page.cursor)
        async with self._uow() as uow:
            rows = await uow.sessions.list_active(user_id, self._clock.now(), after, page.size + 1)
        more = len(rows) > page.size
        rows = rows[: page.size]
        return rows, encode_token(_session_cursor(rows[-1]), query) if more and rows else ""

    async def revoke_session(self, user_id: str, session_id: str) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
            # Another user's session is answered exactly like a missing one.
            if session is None or session.user_id != user_id or not session.active(now):
                raise _session_not_found()
            session.revoke(now, "revoked_by_user")
            await uow.sessions.save(session)
            await self._audit(
                uow,
                "session.revoke",
                _session_name(user_id, session_id),
                actor=_user_actor(user_id),
                metadata={"session_id": session_id, "reason": "revoked_by_user"},
            )
            await uow.commit()
        self._after_commit()

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
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            has_factor = await uow.totp.has_confirmed(user_id)
        if user is None or user.deleted:
            raise _user_not_found()
        self._require_step_up(assurance or Assurance(), has_factor)
        current_n = normalize_password(current)
        account = self._login_account_bucket(user.email)
        try:
            await self._reserve([account], "LOGIN_THROTTLED")
        except ResourceExhausted:
            await self._audit_password_refusal(user_id, "LOGIN_THROTTLED")
            raise
        if not await self._hasher.verify(user.password_hash, current_n):
            await self._audit_password_refusal(user_id, "INVALID_CURRENT_PASSWORD")
            raise InvalidArgument.field(
                "current_password", "is incorrect", reason="INVALID_CURRENT_PASSWORD"
            )
        await self._settle(reset=[account])
        new_n = check_password(new, user.email, self._blocklist, "new_password")
        if _same(new_n, current_n):
            raise InvalidArgument.field(
                "new_password", "must differ from the current password", reason="PASSWORD_UNCHANGED"
            )
        hashed = await self._hasher.hash(new_n)
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.users.replace_password_hash(user_id, user.password_hash, hashed, now):
                raise FailedPrecondition(
                    "the password was changed concurrently; try again", reason="CONCURRENT_CHANGE"
                )
            revoked = await uow.sessions.revoke_all(
                user_id, now, "password_changed", keep=session_id
            )
            await self._audit(
                uow,
                "user.changePassword",
                _user_name(user_id),
                actor=_user_actor(user_id),
                metadata={"session_id": session_id, "sessions_revoked": str(revoked)},
            )
            await uow.commit()
        self._after_commit()

    async def _audit_password_refusal(self, user_id: str, reason: str) -> None:
        await self._audit_refusal(
            user_id, reason, "user.changePassword", _user_name(user_id), actor=_user_actor(user_id)
        )

    # ---- mailed tokens: password reset ---------------------------------------------------------

    async def _token_digest(self, purpose: str, token: str) -> str:
        pepper = await self._sealed_secret(_TOKEN_PEPPER_NAME, _TOKEN_PEPPER_CONTEXT)
        return account_token_hash(pepper, purpose, token)

    async def _mint(self, purpose: str) -> tuple[str, str]:
        """A new token and its stored hash (before any transaction: the pepper may be made)."""
        token = new_account_token()
        return token, await self._token_digest(purpose, token)

    async def _store_token(
        self,
        uow: AuthUnitOfWork,
        purpose: str,
        digest: str,
        user_id: str,
        email: str,
        ttl: dt.timedelta,
    ) -> str:
        """Store a minted token (superseding the user's live ones for ``purpose``); its id."""
        now = self._clock.now()
        token_id = self._new_id()
        await uow.tokens.retire(user_id, (purpose,), now)
        await uow.tokens.add(
            AccountToken(token_id, purpose, user_id, digest, email, now, now + ttl)
        )
        return token_id

    async def _send(
        self, uow: AuthUnitOfWork, to: str, template: str, mail: tuple[str, str]
    ) -> None:
        subject, body = mail
        await uow.mail.record(
            Mail.new(to=to, subject=subject, body=body, template=template, now=self._clock.now())
        )

    def _mail_buckets(self, kind: str, address: str, client_ip: str) -> list[_Bucket]:
        return [
            _Bucket(f"{kind}:ip:{_ip(client_ip)}", self._config.throttle.mail_ip),
            _Bucket(f"{kind}:addr:{_digest(address)}", self._config.throttle.mail_address),
        ]

    async def request_password_reset(self, email: str, client_ip: str = "") -> None:
        """Mail a reset link to a live account. The answer is the same for any address: nothing
        for an unknown one, throttled per address (known or not) and per client IP alike."""
        address = lookup_email(email)
        await self._reserve(self._mail_buckets("reset", address, client_ip), "RESET_THROTTLED")
        token, digest = await self._mint(PASSWORD_RESET)
        async with self._uow() as uow:
            user = await uow.users.by_email(address)
            if user is None or user.deleted:
                # the sealing a real mail costs (a KMS round trip with Vault), so the timing of
                # the answer does not tell a registered address from another
                await self._sealer.encrypt(bytes(1024), "mail/decoy")
                return
            token_id = await self._store_token(
                uow, PASSWORD_RESET, digest, user.id, user.email, self._config.reset_token_ttl
            )
            await self._send(
                uow,
                user.email,
                "password-reset",
                mails.password_reset(self._config.public_url, token, self._config.reset_token_ttl),
            )
            await self._audit(
                uow,
                "user.requestPasswordReset",
                _user_name(user.id),
                actor=_user_actor(user.id),
                client_ip=client_ip,
                metadata={"reset_id": token_id},
            )
            await uow.commit()
        self._after_commit()

    async def _live_token(self, purpose: str, token: str, client_ip: str) -> AccountToken:
        """The usable token, counted against the client IP; one error for every failure."""
        ip = _Bucket(f"token:ip:{_ip(client_ip)}", self._config.throttle.token_ip)
        await self._reserve([ip], "TOKEN_THROTTLED")
        if not account_token_well_formed(token):
            raise _invalid_token()
        digest = await self._token_digest(purpose, token)
        async with self._uow() as uow:
            record = await uow.tokens.by_hash(digest, purpose)
        if record is None or not record.usable(self._clock.now()):
            raise _invalid_token()
        return record

    async def _token_ip_refund(self, client_ip: str) -> None:
        ip = _Bucket(f"token:ip:{_ip(client_ip)}", self._config.throttle.token_ip)
        await self._settle(refund=[ip])

    async def reset_password(self, token: str, new_password: str, client_ip: str = "") -> None:
        """Set a new password with a reset token: single use (of two concurrent uses exactly
        one wins), every session and refresh family ended, open MFA challenges ended, a notice
        mailed. The TOTP factor stays: the next login still needs the second factor."""
        record = await self._live_token(PASSWORD_RESET, token, client_ip)
        async with self._uow() as uow:
            user = await uow.users.get(record.user_id)
        if user is None or user.deleted:
            raise _invalid_token()
        new_n = check_password(new_password, user.email, self._blocklist, "new_password")
        hashed = await self._hasher.hash(new_n)
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.tokens.consume(record.id, now):
                raise _invalid_token()
            if not await uow.users.set_password_hash(user.id, hashed, now):
                raise _invalid_token()
            revoked = await uow.sessions.revoke_all(user.id, now, "password_reset")
            await uow.challenges.consume_all(user.id, now)
            await uow.tokens.retire(user.id, (PASSWORD_RESET,), now)
            await self._send(uow, user.email, "password-was-reset", mails.password_was_reset(now))
            await self._audit(
                uow,
                "user.resetPassword",
                _user_name(user.id),
                actor=_user_actor(user.id),
                client_ip=client_ip,
                metadata={"reset_id": record.id, "sessions_revoked": str(revoked)},
            )
            await uow.commit()
        self._after_commit()
        await self._token_ip_refund(client_ip)
        await self._settle(reset=[self._login_account_bucket(user.email)])
        _log.info("password reset", extra={"user_id": user.id, "sessions_revoked": revoked})

    # ---- signing keys ------------------------------------------------------------------------

    async def jwks(self) -> str:
        now = self._clock.now()
        async with self._read_uow() as uow:
            keys = await uow.signing_keys.all()
        order = {KeyState.CURRENT: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
        published = sorted((k for k in keys if k.published(now)), key=lambda k: order[k.state])
        return json.dumps({"keys": [k.public_jwk() for k in published]}, separators=(",", ":"))

    async def rotate_signing_keys(
        self, now: dt.datetime | None = None, *, policy: RotationPolicy | None = None
    ) -> RotationPlan:
        """Bring the key set in line with the rotation policy; safe to run at any time."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            keys = {k.kid: k for k in await uow.signing_keys.all()}
            plan = plan_rotation(list(keys.values()), now, policy or self._config.rotation)
            if plan.empty:
                return plan
            for kid in plan.drop:
                await uow.signing_keys.remove(kid)
                self._private_keys.pop(kid, None)
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
            await self._audit(
                uow,
                "signingKey.rotate",
                "signingKeys",
                actor="system",
                metadata={
                    "promoted_kid": plan.promote or "",
                    "retired": _joined(plan.retire),
                    "dropped": _joined(plan.drop),
                    "created": ",".join(created),
                },
            )
            await uow.commit()
        self._after_commit()
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

    async def forget_grace_secrets(self) -> int:
        """Delete sealed refresh-token children whose grace window has ended."""
        async with self._uow() as uow:
            count = await uow.refresh_tokens.forget_grace_secrets(
                self._clock.now() - self._config.sessions.grace
            )
            await uow.commit()
        return count

    async def _new_key(self, state: KeyState, now: dt.datetime) -> SigningKey:
        public, private = self._signer.generate()
        kid = thumbprint_kid(public)
        sealed = await self._sealer.encrypt(private, _signing_context(kid))
        return SigningKey(
            kid=kid,
            state=state,
            public_key=public,
            sealed_private_key=sealed,
            created_at=now,
            activated_at=now if state is KeyState.CURRENT else None,
        )

    # ---- tokens ------------------------------------------------------------------------------

    async def _pair(self, session: Session, refresh: str, now: dt.datetime) -> TokenPair:
        ttl = int(self._config.access_token_ttl.total_seconds())
        return TokenPair(
            access_token=await self._access_token(session, now),
            expires_in=ttl,
            refresh_token=refresh,
            refresh_expires_in=session.expires_in(now),
        )

    async def _signing_key(self) -> tuple[str, bytes]:
        async with self._uow() as uow:
            key = await uow.signing_keys.current()
        if key is None:
            raise FailedPrecondition("no signing key is active", reason="NO_SIGNING_KEY")
        private = self._private_keys.get(key.kid)
        if private is None:
            private = await self._sealer.decrypt(key.sealed_private_key, _signing_context(key.kid))
            self._private_keys[key.kid] = private
        return key.kid, private

    async def _access_token(self, session: Session, now: dt.datetime) -> str:
        kid, private = await self._signing_key()
        iat = int(now.timestamp())
        claims: dict[str, object] = {
            "iss": self._config.issuer,
            "sub": session.user_id,
            "aud": self._config.audience,
            "iat": iat,
            "nbf": iat,
            "exp": iat + int(self._config.access_token_ttl.total_seconds()),
            "jti": secrets.token_urlsafe(16),
            "sid": session.id,
            "aal": session.aal,
            "amr": list(session.amr),
            "auth_time": int(session.auth_time.timestamp()),
            "email_verified": await self._email_verified(session.user_id),
        }
        return self._signer.sign(claims, private, kid)

    async def _email_verified(self, user_id: str) -> bool:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        return user is not None and user.email_verified


_SESSION_STARTS = frozenset({"user.login", "user.verifyMfa", "totp.confirm"})


def _safe_user_agent(raw: str) -> str:
    """Printable ASCII, at most 200 characters, and nothing that looks like a secret."""
    agent = "".join(ch for ch in raw if 32 <= ord(ch) < 127)[:200]
    try:
        check_metadata({"user_agent": agent})
    except AuditMetadataError:
        return "(withheld)"
    return agent


def _joined(values: Sequence[str], limit: int = 256) -> str:
    """``values`` comma-joined, cut at a whole item to fit an audit metadata value."""
    out = ""
    for value in values:
        candidate = f"{out},{value}" if out else value
        if len(candidate) > limit - 2:
            return f"{out},…"
        out = candidate
    return out


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def _invalid_token() -> InvalidArgument:
    # One answer for unknown, foreign, used, superseded and expired tokens alike.
    return InvalidArgument.field(
        "token", "is invalid, expired or already used", reason="INVALID_TOKEN"
    )


def _email_taken() -> AlreadyExists:
    return AlreadyExists("that email address is already registered", reason="EMAIL_TAKEN")
