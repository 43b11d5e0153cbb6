"""Issuing tokens: a new session's refresh family, and JWTs signed with the current key.

The private signing keys are decrypted once and cached in memory; signing-key rotation tells
the issuer to :meth:`TokenIssuer.forget` a dropped key.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping

from servicekit.errors import FailedPrecondition

from auth_service.domain import RefreshRecord, Session, new_refresh_token, token_hash
from auth_service.ports import PasswordHasher, Sealer, TokenSigner, UnitOfWork, UnitOfWorkFactory
from auth_service.usecases.config import AuthConfig, TokenPair
from auth_service.usecases.context import UseCaseContext
from auth_service.usecases.throttling import Throttling


def signing_context(kid: str) -> str:
    return f"auth/signing-key/{kid}"


class TokenIssuer:
    def __init__(
        self, uow: UnitOfWorkFactory, sealer: Sealer, signer: TokenSigner, config: AuthConfig
    ) -> None:
        self._uow, self._sealer, self._signer, self._config = uow, sealer, signer, config
        self._private_keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "TokenIssuer()"

    async def start_session(
        self, uow: UnitOfWork, session: Session, record_id: str, now: dt.datetime
    ) -> str:
        """Store ``session`` and the first refresh token of its family (in ``uow``); the token."""
        refresh = new_refresh_token()
        await uow.sessions.add(session)
        await uow.refresh_tokens.add(RefreshRecord(record_id, session.id, token_hash(refresh), now))
        return refresh

    async def pair(
        self,
        session: Session,
        refresh: str,
        now: dt.datetime,
        *,
        email_verified: bool | None = None,
    ) -> TokenPair:
        """An access token for ``session`` with its refresh token.

        ``email_verified``: the user's flag as the caller's transaction just read it (else it is
        read here).
        """
        ttl = int(self._config.access_token_ttl.total_seconds())
        return TokenPair(
            access_token=await self._access_token(session, now, email_verified),
            expires_in=ttl,
            refresh_token=refresh,
            refresh_expires_in=session.expires_in(now),
        )

    async def sign(self, claims: Mapping[str, object], typ: str) -> str:
        """``claims`` signed with the current key, as a JWT of type ``typ``."""
        kid, private = await self._signing_key()
        return self._signer.sign(claims, private, kid, typ)

    def forget(self, kid: str) -> None:
        """Drop a cached private key (the key was removed)."""
        self._private_keys.pop(kid, None)

    async def _signing_key(self) -> tuple[str, bytes]:
        async with self._uow() as uow:
            key = await uow.signing_keys.current()
        if key is None:
            raise FailedPrecondition("no signing key is active", reason="NO_SIGNING_KEY")
        private = self._private_keys.get(key.kid)
        if private is None:
            private = await self._sealer.decrypt(key.sealed_private_key, signing_context(key.kid))
            self._private_keys[key.kid] = private
        return key.kid, private

    async def _access_token(
        self, session: Session, now: dt.datetime, email_verified: bool | None = None
    ) -> str:
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
            "email_verified": (
                await self._email_verified(session.user_id)
                if email_verified is None
                else email_verified
            ),
        }
        return self._signer.sign(claims, private, kid)

    async def _email_verified(self, user_id: str) -> bool:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        return user is not None and user.email_verified


class SecretExchange:
    """A capability that trades a checked secret (password, PIN) for a token: the hasher to
    check it, the throttle that bounds guessing, and the issuer of what it is traded for."""

    def __init__(
        self,
        ctx: UseCaseContext,
        hasher: PasswordHasher,
        throttling: Throttling,
        issuer: TokenIssuer,
    ) -> None:
        self._ctx, self._hasher, self._throttling, self._issuer = ctx, hasher, throttling, issuer
        self._config = ctx.config

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
