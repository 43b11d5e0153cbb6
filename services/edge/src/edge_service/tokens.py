"""Access-token verification against the auth service's JWKS, cached at the edge.

Pinned: algorithm EdDSA, ``typ: at+jwt``, issuer, audience; ``kid`` must be in the JWKS (an
unknown one triggers at most one refresh per interval, then fails); ``jku``/``x5u`` are never
followed. Each of the three segments must be canonical base64url (RFC 7515 §2: no padding, no
other alphabet, unused trailing bits zero): a decoder that forgives ``==`` or stray bits would
let many strings stand for one signature, so one token could be replayed under many spellings.

A token that verified is remembered by its exact string until it expires: the same bytes can only
verify the same way. That spares the Ed25519 check and PyJWT's pure-Python decoding on every
request. What the memo does not decide is whether the token's session is still active: the
gateway asks ``sessions.SessionGuard`` after every verification, memo hit or not, so a token of
an ended session is refused within a second although its signature stays valid until ``exp``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm
from servicekit.errors import Unauthenticated

__all__ = ["AccessClaims", "TokenVerifier", "is_canonical_jws"]

_INVALID = "the access token is invalid or expired"
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def is_canonical_jws(token: str) -> bool:
    """Three segments, each exactly as base64url-without-padding encodes its own bytes."""
    segments = token.split(".")
    if len(segments) != 3:
        return False
    for segment in segments:
        if not segment or not _B64URL.match(segment) or len(segment) % 4 == 1:
            return False
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            return False
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
            return False  # trailing bits set: another spelling of the same bytes
    return True


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    aal: str
    amr: tuple[str, ...]
    auth_time: int
    email_verified: bool = False
    lifetime: float = 0.0  # exp - iat, seconds: how long a token like this one is valid


class TokenVerifier:
    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[str]],
        issuer: str,
        audience: str,
        *,
        refresh_seconds: float = 300.0,
        min_refetch_seconds: float = 30.0,
        leeway: float = 5.0,
    ) -> None:
        self._fetch = fetch_jwks
        self.issuer, self.audience = issuer, audience
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._refresh, self._min_refetch, self._leeway = (
            refresh_seconds,
            min_refetch_seconds,
            leeway,
        )
        self._lock = asyncio.Lock()
        self.jwks_json = ""
        self._verified: dict[str, tuple[float, AccessClaims]] = {}  # token -> (exp, claims)

    @property
    def ready(self) -> bool:
        return bool(self._keys)

    async def refresh(self, *, force: bool = False) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and self._keys and now - self._loaded_at < self._min_refetch:
                return
            raw = await self._fetch()
            keys: dict[str, Any] = {}
            for jwk in json.loads(raw).get("keys", []):
                if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                    keys[jwk["kid"]] = OKPAlgorithm.from_jwk(json.dumps(jwk))
            self._keys, self._loaded_at, self.jwks_json = keys, now, raw

    async def _key(self, kid: str) -> Any:
        if not self._keys or time.monotonic() - self._loaded_at > self._refresh:
            await self.refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            await self.refresh()  # a freshly published key; rate-limited by min_refetch
            key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated(_INVALID, reason="TOKEN_INVALID")
        return key

    async def verify(self, token: str) -> AccessClaims:
        hit = self._verified.get(token)
        if hit is not None:
            if time.time() < hit[0]:
                return hit[1]
            del self._verified[token]
        claims = await self._verify(token)
        return claims

    async def _verify(self, token: str) -> AccessClaims:
        if not is_canonical_jws(token):
            raise Unauthenticated(_INVALID, reason="TOKEN_INVALID")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(_INVALID, reason="TOKEN_INVALID") from None
        if (
            header.get("alg") != "EdDSA"
            or header.get("typ") != "at+jwt"
            or not isinstance(header.get("kid"), str)
        ):
            raise Unauthenticated(_INVALID, reason="TOKEN_INVALID")
        key = await self._key(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise Unauthenticated(_INVALID, reason="TOKEN_INVALID") from None
        amr = claims.get("amr") or []
        verified = AccessClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            aal=str(claims.get("aal", "aal1")),
            amr=tuple(str(a) for a in amr) if isinstance(amr, list) else (),
            auth_time=int(claims.get("auth_time", claims["iat"])),
            email_verified=claims.get("email_verified") is True,
            lifetime=float(claims["exp"]) - float(claims["iat"]),
        )
        if len(self._verified) >= 20_000:
            self._verified.clear()
        self._verified[token] = (float(claims["exp"]) + self._leeway, verified)
        return verified
