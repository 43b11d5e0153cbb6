"""Use cases of the auth service: fetch → check → act → commit, primitives in and out.

Secrets (passwords, refresh tokens, private keys) travel only as arguments and return values;
they are never logged, never put in an error, and never stored in clear.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from servicekit.clock import Clock
from servicekit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from servicekit.pagination import encode_token, page_request

from auth_service.adapters.repository import AuthUnitOfWork
from auth_service.domain import (
    Blocklist,
    KeyState,
    RefreshRecord,
    Replay,
    RotationPolicy,
    Session,
    SessionPolicy,
    SigningKey,
    User,
    check_password,
    classify_replay,
    lookup_email,
    new_refresh_token,
    normalize_password,
    plan_rotation,
    thumbprint_kid,
    token_hash,
    validate_display_name,
    validate_email,
    well_formed,
)

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


class TokenSigner(Protocol):
    def generate(self) -> tuple[bytes, bytes]: ...
    def sign(self, claims: Mapping[str, object], private_key: bytes, kid: str) -> str: ...


@dataclass(frozen=True, slots=True)
class AuthConfig:
    issuer: str = "https://railguard.local"
    audience: str = "railguard"
    access_token_ttl: dt.timedelta = dt.timedelta(minutes=10)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    rotation: RotationPolicy = field(default_factory=RotationPolicy)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    refresh_expires_in: int


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
    ) -> None:
        self._uow, self._clock, self._hasher, self._blocklist = uow, clock, hasher, blocklist
        self._sealer, self._signer, self._config, self._new_id = sealer, signer, config, new_id
        self._private_keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "AuthService()"

    # ---- users -------------------------------------------------------------------------------

    async def sign_up(self, email: str, password: str, display_name: str) -> User:
        address = validate_email(email)
        name = validate_display_name(display_name)
        normalized = check_password(password, address, self._blocklist)
        async with self._uow() as uow:
            # Trade-off (docs/auth.md): this answer reveals that an address is registered.
            if await uow.users.by_email(address) is not None:
                raise _email_taken()
        hashed = await self._hasher.hash(normalized)
        now = self._clock.now()
        user = User(self._new_id(), address, name, hashed, now, now)
        async with self._uow() as uow:
            await uow.users.add(user)  # the unique index settles a concurrent sign-up
            await uow.commit()
        return user

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
            await uow.sessions.revoke_all(user_id, now, "account_deleted")
            await uow.commit()

    # ---- login, refresh, logout --------------------------------------------------------------

    async def login(self, email: str, password: str, client_ip: str = "") -> TokenPair:
        # Throttling (per account and per IP) plugs in here: refuse before the verify below,
        # record the outcome after it — see docs/auth.md.
        normalized = normalize_password(password)
        async with self._uow() as uow:
            user = await uow.users.by_email(lookup_email(email))
        if user is None or user.deleted:
            await self._hasher.verify_dummy(normalized)
            raise _invalid_credentials()
        if not await self._hasher.verify(user.password_hash, normalized):
            raise _invalid_credentials()
        upgraded = (
            await self._hasher.hash(normalized)
            if self._hasher.needs_rehash(user.password_hash)
            else None
        )
        now = self._clock.now()
        session = Session.begin(self._new_id(), user.id, now, self._config.sessions, client_ip)
        refresh = new_refresh_token()
        async with self._uow() as uow:
            fresh = await uow.users.get(user.id)
            # The password may have changed, or the account been deleted, while we verified.
            if fresh is None or fresh.deleted or not _same(fresh.password_hash, user.password_hash):
                raise _invalid_credentials()
            if upgraded is not None:
                await uow.users.replace_password_hash(user.id, user.password_hash, upgraded, now)
            await uow.sessions.add(session)
            await uow.refresh_tokens.add(
                RefreshRecord(self._new_id(), session.id, token_hash(refresh), now)
            )
            await uow.commit()
        return await self._pair(session, refresh, now)

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
                await uow.commit()
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
            await uow.commit()

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
            await uow.commit()

    async def change_password(self, user_id: str, session_id: str, current: str, new: str) -> None:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or user.deleted:
            raise _user_not_found()
        current_n = normalize_password(current)
        if not await self._hasher.verify(user.password_hash, current_n):
            raise InvalidArgument.field(
                "current_password", "is incorrect", reason="INVALID_CURRENT_PASSWORD"
            )
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
            await uow.sessions.revoke_all(user_id, now, "password_changed", keep=session_id)
            await uow.commit()

    # ---- signing keys ------------------------------------------------------------------------

    async def jwks(self) -> str:
        now = self._clock.now()
        async with self._uow() as uow:
            keys = await uow.signing_keys.all()
        order = {KeyState.CURRENT: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
        published = sorted((k for k in keys if k.published(now)), key=lambda k: order[k.state])
        return json.dumps({"keys": [k.public_jwk() for k in published]}, separators=(",", ":"))

    async def rotate_signing_keys(self, now: dt.datetime | None = None) -> None:
        """Bring the key set in line with the rotation policy; safe to run at any time."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            keys = {k.kid: k for k in await uow.signing_keys.all()}
            plan = plan_rotation(list(keys.values()), now, self._config.rotation)
            if plan.empty:
                return
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
            if plan.create_current:
                await uow.signing_keys.add(await self._new_key(KeyState.CURRENT, now))
            if plan.create_next:
                await uow.signing_keys.add(await self._new_key(KeyState.NEXT, now))
            await uow.commit()
        _log.info(
            "signing keys rotated",
            extra={
                "promoted": plan.promote or "",
                "retired": list(plan.retire),
                "dropped": list(plan.drop),
            },
        )

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

    async def _access_token(self, session: Session, now: dt.datetime) -> str:
        async with self._uow() as uow:
            key = await uow.signing_keys.current()
        if key is None:
            raise FailedPrecondition("no signing key is active", reason="NO_SIGNING_KEY")
        private = self._private_keys.get(key.kid)
        if private is None:
            private = await self._sealer.decrypt(key.sealed_private_key, _signing_context(key.kid))
            self._private_keys[key.kid] = private
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
        }
        return self._signer.sign(claims, private, key.kid)


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def _email_taken() -> AlreadyExists:
    return AlreadyExists("that email address is already registered", reason="EMAIL_TAKEN")
