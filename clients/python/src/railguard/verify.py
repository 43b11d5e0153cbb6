"""Helpers for platform services: verify a Railguard access token locally, an API key remotely.

``AccessTokenVerifier`` checks a JWT against the edge's JWKS (``/.well-known/jwks.json``) without
calling anything per request: algorithm EdDSA, ``typ: at+jwt``, issuer and audience pinned,
``exp``/``nbf``/``iat``/``sub``/``sid``/``jti`` required. The JWKS is cached for
``cache_seconds``; a token signed by a ``kid`` not in the cache (a freshly rotated key) triggers one
refetch, at most every ``min_refetch_seconds``, so forged kids cannot make it hammer the edge.

``ApiKeyVerifier`` asks the edge's ``GET /v1/whoami`` with the key (the edge checks format,
checksum, revocation, expiry, IP allowlist against *this* caller's address, origin) and caches
the answer for ``ttl`` seconds (default 1 s, so a revocation is honoured within about a second).
The cache is keyed by a SHA-256 of the key, never the key itself; failures are not cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm

from railguard.errors import PermissionDenied, Unauthenticated

__all__ = [
    "AccessClaims",
    "AccessTokenVerifier",
    "ApiKeyVerifier",
    "AsyncAccessTokenVerifier",
    "AsyncApiKeyVerifier",
]

_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says: who, which session, how strongly authenticated."""

    user_id: str
    session_id: str
    aal: str
    amr: tuple[str, ...]
    expires_at: int
    claims: Mapping[str, Any] = field(repr=False)


def _invalid(detail: str = "the access token is invalid") -> Unauthenticated:
    return Unauthenticated(401, "TOKEN_INVALID", detail)


class _JwksCache:
    """Parsed Ed25519 keys by kid, with the refetch rules; the fetching is the caller's."""

    def __init__(self, cache_seconds: float, min_refetch_seconds: float) -> None:
        self.cache_seconds, self.min_refetch_seconds = cache_seconds, min_refetch_seconds
        self.keys: dict[str, Any] = {}
        self.loaded_at = float("-inf")

    def load(self, raw: str | bytes) -> None:
        keys: dict[str, Any] = {}
        for jwk in json.loads(raw).get("keys", []):
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                keys[str(jwk["kid"])] = OKPAlgorithm.from_jwk(json.dumps(jwk))
        self.keys, self.loaded_at = keys, time.monotonic()

    def stale(self) -> bool:
        return time.monotonic() - self.loaded_at > self.cache_seconds

    def may_refetch(self) -> bool:
        return time.monotonic() - self.loaded_at >= self.min_refetch_seconds


def _kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid() from None
    kid = header.get("kid")
    if header.get("alg") != "EdDSA" or header.get("typ") != "at+jwt" or not isinstance(kid, str):
        raise _invalid()
    return kid


def _decode(token: str, key: Any, issuer: str, audience: str, leeway: float) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated(401, "TOKEN_EXPIRED", "the access token has expired") from None
    except jwt.PyJWTError:
        raise _invalid() from None
    amr = claims.get("amr") or []
    return AccessClaims(
        user_id=str(claims["sub"]),
        session_id=str(claims["sid"]),
        aal=str(claims.get("aal", "aal1")),
        amr=tuple(str(a) for a in amr) if isinstance(amr, list) else (),
        expires_at=int(claims["exp"]),
        claims=claims,
    )


class AccessTokenVerifier:
    """Synchronous local verification; ``fetch_jwks`` returns the JWKS document's bytes.

    Build it from a client: ``AccessTokenVerifier.for_client(client, issuer=…, audience=…)``.
    """

    def __init__(
        self,
        fetch_jwks: Callable[[], str | bytes],
        *,
        issuer: str,
        audience: str,
        cache_seconds: float = 600.0,
        min_refetch_seconds: float = 30.0,
        leeway: float = 5.0,
    ) -> None:
        self._fetch, self.issuer, self.audience, self.leeway = fetch_jwks, issuer, audience, leeway
        self._cache = _JwksCache(cache_seconds, min_refetch_seconds)
        self._lock = threading.Lock()
        self.fetches = 0

    @classmethod
    def for_client(
        cls, client: Any, *, issuer: str, audience: str, **kw: Any
    ) -> AccessTokenVerifier:
        return cls(lambda: json.dumps(client.jwks()), issuer=issuer, audience=audience, **kw)

    def _refresh(self, *, only_if_allowed: bool) -> None:
        with self._lock:
            if only_if_allowed and not self._cache.may_refetch():
                return
            self._cache.load(self._fetch())
            self.fetches += 1

    def verify(self, token: str) -> AccessClaims:
        kid = _kid(token)
        if self._cache.stale():
            self._refresh(only_if_allowed=False)
        key = self._cache.keys.get(kid)
        if key is None:
            self._refresh(only_if_allowed=True)  # a freshly published key?
            key = self._cache.keys.get(kid)
        if key is None:
            raise _invalid("the token's signing key is unknown")
        return _decode(token, key, self.issuer, self.audience, self.leeway)


class AsyncAccessTokenVerifier:
    """The asyncio twin of ``AccessTokenVerifier``; ``fetch_jwks`` is awaited."""

    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[str | bytes]],
        *,
        issuer: str,
        audience: str,
        cache_seconds: float = 600.0,
        min_refetch_seconds: float = 30.0,
        leeway: float = 5.0,
    ) -> None:
        self._fetch, self.issuer, self.audience, self.leeway = fetch_jwks, issuer, audience, leeway
        self._cache = _JwksCache(cache_seconds, min_refetch_seconds)
        self._lock = asyncio.Lock()
        self.fetches = 0

    @classmethod
    def for_client(
        cls, client: Any, *, issuer: str, audience: str, **kw: Any
    ) -> AsyncAccessTokenVerifier:
        async def fetch() -> str:
            return json.dumps(await client.jwks())

        return cls(fetch, issuer=issuer, audience=audience, **kw)

    async def _refresh(self, *, only_if_allowed: bool) -> None:
        async with self._lock:
            if only_if_allowed and not self._cache.may_refetch():
                return
            self._cache.load(await self._fetch())
            self.fetches += 1

    async def verify(self, token: str) -> AccessClaims:
        kid = _kid(token)
        if self._cache.stale():
            await self._refresh(only_if_allowed=False)
        key = self._cache.keys.get(kid)
        if key is None:
            await self._refresh(only_if_allowed=True)
            key = self._cache.keys.get(kid)
        if key is None:
            raise _invalid("the token's signing key is unknown")
        return _decode(token, key, self.issuer, self.audience, self.leeway)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class _TtlCache:
    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self.entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, digest: str) -> dict[str, Any] | None:
        hit = self.entries.get(digest)
        if hit is None:
            return None
        if time.monotonic() >= hit[0]:
            del self.entries[digest]
            return None
        return hit[1]

    def put(self, digest: str, value: dict[str, Any]) -> None:
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[digest] = (time.monotonic() + self.ttl, value)


class ApiKeyVerifier:
    """Verify an API key through the edge's ``/v1/whoami``; ``lookup(key)`` calls it.

    Build it from a base URL: ``ApiKeyVerifier.for_edge("https://edge:8443", verify="ca.crt")``.
    ``verify(key, required_scope=…)`` returns the whoami answer or raises ``RailguardError``.
    """

    def __init__(
        self,
        lookup: Callable[[str], dict[str, Any]],
        *,
        ttl: float = 1.0,
        max_entries: int = 10_000,
        close: Callable[[], None] | None = None,
    ) -> None:
        self._lookup, self._cache, self._close = lookup, _TtlCache(ttl, max_entries), close
        self.lookups = 0

    def close(self) -> None:
        """Close the client ``for_edge`` made (a verifier built on your client leaves it open)."""
        if self._close is not None:
            self._close()

    def __enter__(self) -> ApiKeyVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def for_client(cls, client: Any, **kw: Any) -> ApiKeyVerifier:
        """Lookups through ``client`` (a ``railguard.Client``; its connections are reused)."""
        from railguard import ops

        return cls(lambda key: dict(client._t.send(ops.whoami_with_key(key))), **kw)

    @classmethod
    def for_edge(cls, base_url: str, *, ttl: float = 1.0, **client_kw: Any) -> ApiKeyVerifier:
        """A verifier with its own long-lived client (``client_kw``: ``verify=``, ``timeout=``)."""
        from railguard.client import Client

        client = Client(base_url, **client_kw)
        return cls.for_client(client, ttl=ttl, close=client.close)

    def verify(self, key: str, *, required_scope: str = "") -> dict[str, Any]:
        digest = _digest(key)
        principal = self._cache.get(digest)
        if principal is None:
            principal = self._lookup(key)
            self.lookups += 1
            if principal.get("type") != "apiKey":
                raise Unauthenticated(401, "NOT_AN_API_KEY", "the credential is not an API key")
            self._cache.put(digest, principal)
        _check_scope(principal, required_scope)
        return principal


class AsyncApiKeyVerifier:
    """The asyncio twin of ``ApiKeyVerifier``; ``lookup(key)`` is awaited."""

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[dict[str, Any]]],
        *,
        ttl: float = 1.0,
        max_entries: int = 10_000,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._lookup, self._cache, self._close = lookup, _TtlCache(ttl, max_entries), close
        self.lookups = 0

    async def aclose(self) -> None:
        """Close the client ``for_edge`` made (a verifier built on your client leaves it open)."""
        if self._close is not None:
            await self._close()

    async def __aenter__(self) -> AsyncApiKeyVerifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @classmethod
    def for_client(cls, client: Any, **kw: Any) -> AsyncApiKeyVerifier:
        """Lookups through ``client`` (a ``railguard.AsyncClient``; connections are reused)."""
        from railguard import ops

        async def lookup(key: str) -> dict[str, Any]:
            return dict(await client._t.send(ops.whoami_with_key(key)))

        return cls(lookup, **kw)

    @classmethod
    def for_edge(cls, base_url: str, *, ttl: float = 1.0, **client_kw: Any) -> AsyncApiKeyVerifier:
        """A verifier with its own long-lived client (``client_kw``: ``verify=``, ``timeout=``)."""
        from railguard.aio import AsyncClient

        client = AsyncClient(base_url, **client_kw)
        return cls.for_client(client, ttl=ttl, close=client.aclose)

    async def verify(self, key: str, *, required_scope: str = "") -> dict[str, Any]:
        digest = _digest(key)
        principal = self._cache.get(digest)
        if principal is None:
            principal = await self._lookup(key)
            self.lookups += 1
            if principal.get("type") != "apiKey":
                raise Unauthenticated(401, "NOT_AN_API_KEY", "the credential is not an API key")
            self._cache.put(digest, principal)
        _check_scope(principal, required_scope)
        return principal


def _check_scope(principal: dict[str, Any], required_scope: str) -> None:
    if required_scope and required_scope not in (principal.get("scopes") or []):
        raise PermissionDenied(403, "SCOPE_NOT_GRANTED", f"API key lacks scope {required_scope}")
