"""API-key authentication at the edge: the keys service decides, the edge caches briefly.

A verified key is cached for at most ``ttl`` seconds and never past the instant its secret stops
working. Without Redis the ttl is 0.5 s, so a revoked key is refused within a second even
allowing for the request in flight (measured at 1.0 s it left under 2 ms of margin). With
Redis every replica subscribes to ``railguard:keys:invalidate`` (payload: the key id) and drops
the key's entries the moment the keys service publishes a revocation, rotation or change
(payload ``{"v": 1, "key_id": ...}``), so revocation is visible in milliseconds; the 0.5 s bound
stays in force (a lost publish still cannot keep a key alive past a second), and a larger ttl
(``RAILGUARD_EDGE_KEY_CACHE_SECONDS``) is honoured only while the subscription is up.

While the keys service's change feed is live (``edge_service.feeds``: in sync, heard from within
1 s) a verified key is kept up to ``live_ttl`` (``RAILGUARD_EDGE_KEY_FEED_CACHE_SECONDS``, 60 s)
and never past its secret's expiry: every change of the key (``api_key`` topic) or of its
workspace's life (``workspace``) drops it when it is heard, and a feed that stops being live
brings back the bounds above. A verification that overlapped a change is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from railguard.keys.v1 import keys_service_pb2, keys_service_pb2_grpc
from servicekit.clients import call
from servicekit.context import Principal
from servicekit.errors import Unauthenticated

__all__ = ["INVALIDATION_CHANNEL", "KeyOrigins", "KeysServiceVerifier"]

INVALIDATION_CHANNEL = "railguard:keys:invalidate"
SAFE_TTL = 0.5
NEGATIVE_TTL = 1.0
"""How long a refused secret is refused without asking; an undelete is heard at once through
Redis, and within this bound without it."""
ORIGINS_TTL = 0.5
"""How stale the set of allowed origins may be; a revoked browser key's origin stops being vouched
for within it (at once through the Redis fan-out)."""
_log = logging.getLogger("edge.api_keys")


def _restricted(response: keys_service_pb2.VerifyApiKeyResponse) -> bool:
    """Whether the key carries a restriction a secret it creates could not carry."""
    return bool(
        response.allowed_cidrs or response.allowed_origins or response.HasField("expire_time")
    )


def _aal(value: str) -> str:
    """The key's recorded assurance; anything but aal2 (an older keys service: empty) is aal1."""
    return "aal2" if value == "aal2" else "aal1"


def _principal(response: keys_service_pb2.VerifyApiKeyResponse, client_ip: str) -> Principal:
    """Who a verified key acts as: its creator, with the key's scopes and restrictions."""
    return Principal(
        user_id=response.created_by,
        aal=_aal(response.aal),
        amr=("key",),
        api_key_id=response.key_id,
        scopes=tuple(response.scopes),
        workspace_id=response.workspace_id,
        client_ip=client_ip,
        api_key_restricted=_restricted(response),
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    allowed_origins: tuple[str, ...]
    expires: float  # monotonic
    stored: float = 0.0  # monotonic; past the short bound, only a live feed vouches for it


class KeysServiceVerifier:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        ttl: float = SAFE_TTL,
        redis: Any = None,
        health: Any = None,
        resubscribe_interval: float = 0.25,
        live: Callable[[], bool] = lambda: False,
        live_ttl: float = 60.0,
    ) -> None:
        self._stub = keys_service_pb2_grpc.KeysServiceStub(channel)
        self._ttl, self._redis = ttl, redis
        self._health = health  # a redis_fallback.RedisHealth: logs and exports the transitions
        self._resubscribe_interval = resubscribe_interval
        self._cache: dict[tuple[str, str, str, str], _Entry] = {}
        self._by_key_id: dict[str, set[tuple[str, str, str, str]]] = {}
        self._subscribed = False
        self._task: asyncio.Task[None] | None = None
        self._negative: dict[str, tuple[float, str, str]] = {}  # digest -> (until, message, reason)
        self.on_invalidate: list[Callable[[], None]] = []  # told of every key change
        self._live, self._live_ttl = live, live_ttl
        self._generation = 0  # bumped by every invalidation: an answer that overlapped one is
        # not stored

    @property
    def effective_ttl(self) -> float:
        if self._live():
            return max(self._ttl, self._live_ttl)
        return self._ttl if self._subscribed else min(self._ttl, SAFE_TTL)

    async def verify(self, key: str, client_ip: str, origin: str, required_scope: str) -> Principal:
        digest = hashlib.sha256(key.encode()).hexdigest()  # the cache never holds the key itself
        cache_key = (digest, client_ip, origin, required_scope)
        now = time.monotonic()
        entry = self._cache.get(cache_key)
        if entry is not None and entry.expires > now and self._vouched(entry, now):
            return entry.principal
        self._refuse_if_known_bad(digest, now)
        generation, ttl = self._generation, self.effective_ttl
        response = await self._ask(
            digest,
            now,
            keys_service_pb2.VerifyApiKeyRequest(
                key=key, client_ip=client_ip, origin=origin, required_scope=required_scope
            ),
        )
        principal = _principal(response, client_ip)
        ttl = min(ttl, self.effective_ttl)  # the feed or the subscription may be lost meanwhile
        if generation != self._generation:
            ttl = 0.0  # a key changed while we asked: the answer may predate it
        if response.HasField("secret_expire_time"):
            remaining = (
                response.secret_expire_time.ToDatetime(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
            ).total_seconds()
            ttl = min(ttl, max(0.0, remaining))
        if ttl > 0:
            if len(self._cache) > 50_000:
                self._cache.clear()
                self._by_key_id.clear()
            self._cache[cache_key] = _Entry(
                principal, tuple(response.allowed_origins), now + ttl, now
            )
            self._by_key_id.setdefault(response.key_id, set()).add(cache_key)
        return principal

    def _vouched(self, entry: _Entry, now: float) -> bool:
        """An entry kept long because the feed was live is used only within the bound that
        holds now (a feed lost since brings back 0.5 s, or the subscription's ttl)."""
        return self._live() or now - entry.stored < self.effective_ttl

    def _refuse_if_known_bad(self, digest: str, now: float) -> None:
        bad = self._negative.get(digest)
        if bad is not None:
            if bad[0] > now:
                raise Unauthenticated(bad[1], reason=bad[2])
            del self._negative[digest]

    def _remember_bad(self, digest: str, error: Unauthenticated, now: float) -> None:
        """A refused secret (unknown, revoked, expired…) is refused again locally for a moment,
        so a client replaying one bad key costs the keys service one lookup per interval."""
        if len(self._negative) >= 50_000:
            self._negative.clear()
        self._negative[digest] = (now + NEGATIVE_TTL, error.message, error.reason)

    async def introspect(self, key: str, client_ip: str, origin: str) -> Principal:
        """Authenticate a key for whoami: every check but an RPC scope; never cached."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        self._refuse_if_known_bad(digest, now)
        response = await self._ask(
            digest,
            now,
            keys_service_pb2.VerifyApiKeyRequest(
                key=key, client_ip=client_ip, origin=origin, introspect=True
            ),
        )
        return _principal(response, client_ip)

    async def _ask(
        self, digest: str, now: float, request: keys_service_pb2.VerifyApiKeyRequest
    ) -> keys_service_pb2.VerifyApiKeyResponse:
        """The keys service's answer for one secret; a refusal is remembered (``_remember_bad``)."""
        try:
            response: keys_service_pb2.VerifyApiKeyResponse = await call(
                self._stub.VerifyApiKey, request
            )
        except Unauthenticated as exc:
            self._remember_bad(digest, exc, now)
            raise
        return response

    def invalidate(self, key_id: str) -> None:
        self._generation += 1
        for cache_key in self._by_key_id.pop(key_id, set()):
            self._cache.pop(cache_key, None)
        self._negative.clear()  # an undeleted key must work again at once
        for listener in self.on_invalidate:
            listener()

    def clear(self) -> None:
        """Drop every entry (a feed Reset, an unreadable event, a new subscription)."""
        self._generation += 1
        self._cache.clear()
        self._by_key_id.clear()
        self._negative.clear()
        for listener in self.on_invalidate:
            listener()

    def on_change(self, topic: str, key: str) -> None:
        """A change heard from the keys service's feed."""
        if topic == "api_key":
            self.invalidate(key)
        elif topic == "workspace":
            self._generation += 1
            gone = [k for k, e in self._cache.items() if e.principal.workspace_id == key]
            for cache_key in gone:
                entry = self._cache.pop(cache_key)
                ids = self._by_key_id.get(entry.principal.api_key_id)
                if ids is not None:
                    ids.discard(cache_key)
            self._negative.clear()  # a restored workspace's keys must work again at once
            for listener in self.on_invalidate:
                listener()
        else:
            self.clear()  # a topic this edge does not know: fail safe

    async def start(self) -> None:
        if self._redis is not None:
            self._task = asyncio.create_task(self._listen())

    @property
    def subscribed(self) -> bool:
        """Whether revocations reach this edge now (else the 0.5 s bound is all there is)."""
        return self._subscribed

    async def _listen(self) -> None:
        lost_logged = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(INVALIDATION_CHANNEL)
                self._subscribed, lost_logged = True, False
                if not self._live():
                    self._generation += 1
                    self._cache.clear()  # anything cached while we were deaf is suspect
                    self._by_key_id.clear()
                    self._negative.clear()
                if self._health is not None:
                    self._health.succeeded()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; meanwhile the 0.5 s bound applies
                if self._health is not None:
                    self._health.failed(exc, "key invalidation")
                elif not lost_logged:  # once per loss, not once per attempt
                    _log.warning("key invalidation subscription lost; retrying")
                lost_logged = True
            finally:
                self._subscribed = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            # resubscribe promptly: revocations fan out again as soon as Redis answers
            await asyncio.sleep(self._resubscribe_interval)

    def _on_message(self, data: object) -> None:
        """``{"v": 1, "key_id": ..., "event": ...}`` from the keys service; anything else clears all."""
        try:
            raw = data.decode() if isinstance(data, bytes) else str(data)
            key_id = json.loads(raw)["key_id"]
            if not isinstance(key_id, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self.clear()  # fail safe: an unreadable event invalidates everything
            return
        self.invalidate(key_id)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class KeyOrigins:
    """The set of origins some active key allows, for CORS preflights: fetched from the keys
    service when older than ``ttl`` (one fetch at a time, by version), dropped on any key change
    heard through the invalidation fan-out. A set that cannot be refreshed is not used (fail
    closed: the preflight is answered 503)."""

    def __init__(self, channel: grpc.aio.Channel, *, ttl: float = ORIGINS_TTL) -> None:
        self._stub = keys_service_pb2_grpc.KeysServiceStub(channel)
        self._ttl = ttl
        self._origins: frozenset[str] = frozenset()
        self._version = ""
        self._fetched = -1e9  # monotonic
        self._generation = 0  # bumped by every invalidation
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._fetched = -1e9
        self._generation += 1

    async def allows(self, origin: str) -> bool:
        if time.monotonic() - self._fetched > self._ttl:
            await self._refresh()
        return origin.lower() in self._origins

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched <= self._ttl:
                return  # another request refreshed it while we waited
            generation, started = self._generation, time.monotonic()
            response = await call(
                self._stub.ListAllowedOrigins,
                keys_service_pb2.ListAllowedOriginsRequest(known_version=self._version),
                timeout=2.0,
            )
            if not response.unchanged:
                self._origins, self._version = frozenset(response.origins), response.version
            if generation == self._generation:  # no invalidation arrived while we asked
                self._fetched = started
