"""The session check: an access token of an ended session is refused within a second.

An access token is verified locally (``tokens``) and stays cryptographically valid until its
``exp``; the session it names (``sid``) may end long before (logout, RevokeSession, a password
change or reset, refresh-token reuse, MFA enrolment, account deletion). After each successful
token verification the gateway calls :meth:`SessionGuard.check`, which decides in one of two ways:

- **pushed**: while ``live()`` is true (a change stream from auth is up and current), the set of
  sessions pushed as ended (:meth:`revoke`) decides alone; no RPC. An entry is kept for
  ``retain`` seconds, at least as long as any access token can live, so no token of an ended
  session outlives its entry (a token that would, by its own ``exp - iat``, is asked about). The set is bounded (``max_entries``); when it is full of entries
  still needed, the oldest is dropped and the pushed set is not trusted again until that entry
  would have expired: the guard asks instead of forgetting a revocation.
- **asking** (no stream, or the pushed set not trusted): auth's ``GetSessionState``, each answer
  kept at most ``ask_ttl`` seconds (counted from when the question was asked) per session, in a
  bounded cache; concurrent checks of one session share one question. When auth cannot answer,
  the request fails closed as a retryable ``Unavailable`` (503 with Retry-After), never accepted.

A session pushed as ended, or answered as ended, is refused in either mode (while its entry is
held): an ended session never becomes active again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from servicekit.errors import Unauthenticated, Unavailable

__all__ = [
    "DEFAULT_RETAIN_SECONDS",
    "MAX_ACCESS_TOKEN_SECONDS",
    "RETAIN_MARGIN_SECONDS",
    "SessionGuard",
]

_log = logging.getLogger("edge.sessions")

# auth's default access-token lifetime (RAILGUARD_AUTH_ACCESS_TOKEN_TTL_SECONDS), and a margin
# for the verifier's leeway (5 s) and clock skew between auth and the edge
MAX_ACCESS_TOKEN_SECONDS = 600.0
RETAIN_MARGIN_SECONDS = 60.0
DEFAULT_RETAIN_SECONDS = MAX_ACCESS_TOKEN_SECONDS + RETAIN_MARGIN_SECONDS
_REVOKED = "the session has ended; sign in again"
_RETRY_AFTER = 1.0
_UNAVAILABLE = "SERVICE_UNAVAILABLE"
# servicekit.status: auth was not reached, or answered without a reason of its own
_TRANSPORT_REASONS = frozenset({"DEPENDENCY_UNAVAILABLE", "DEPENDENCY_FAILED", "UNAVAILABLE"})


def _revoked() -> Unauthenticated:
    return Unauthenticated(_REVOKED, reason="SESSION_REVOKED")


class SessionGuard:
    def __init__(
        self,
        ask: Callable[[str], Awaitable[bool]],
        *,
        live: Callable[[], bool] = lambda: False,
        ask_ttl: float = 0.5,
        max_entries: int = 50_000,
        retain: float = DEFAULT_RETAIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ask(session_id)`` is auth's answer (True: active); ``live()`` whether the pushed
        set is current; ``retain`` how long a pushed revocation is kept (≥ the longest access
        token's life); ``max_entries`` bounds the pushed set and the answer cache each."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ask, self._live, self._ttl, self._max = ask, live, ask_ttl, max_entries
        self._retain, self._clock = retain, clock
        # session -> monotonic instant it may be forgotten; in insertion (= expiry) order
        self._revoked: OrderedDict[str, float] = OrderedDict()
        # the pushed set lacks a revocation that may still matter until this instant
        self._untrusted_until = float("-inf")
        # session -> (monotonic instant the answer goes stale, active); in expiry order
        self._answers: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bool]] = {}

    @property
    def trusted(self) -> bool:
        """Whether the pushed set holds every revocation it was given that may still matter."""
        return self._clock() >= self._untrusted_until

    async def check(self, session_id: str, *, token_lifetime: float = 0.0) -> None:
        """Refuse (401 SESSION_REVOKED) an ended session; 503 when it cannot be told.

        ``token_lifetime`` (the token's ``exp - iat``): a token that lives longer than pushed
        revocations are kept (auth's TTL raised past the edge's setting) is always asked about,
        since the pushed set may have forgotten its session's end."""
        answer = self._answers.get(session_id)
        if session_id in self._revoked or (answer is not None and not answer[1]):
            raise _revoked()  # an ended session never becomes active again: never stale
        now = self._clock()
        pushed_covers = token_lifetime <= self._retain
        if pushed_covers and self._live() and now >= self._untrusted_until:
            return
        if answer is not None and answer[0] > now:
            active = answer[1]
        else:
            active = await self._asked(session_id)
        if not active:
            raise _revoked()

    def revoke(self, session_id: str) -> None:
        """Pushed: ``session_id`` ended."""
        now = self._clock()
        self._answers.pop(session_id, None)
        self._revoked.pop(session_id, None)
        while self._revoked:  # drop the entries no access token can need any more
            oldest, forget_at = next(iter(self._revoked.items()))
            if forget_at > now:
                break
            del self._revoked[oldest]
        if len(self._revoked) >= self._max:
            # full of entries still needed: rather than forget a revocation silently, stop
            # trusting the pushed set until the dropped one would have expired anyway
            _, forget_at = self._revoked.popitem(last=False)
            self._untrusted_until = max(self._untrusted_until, forget_at)
            _log.warning("pushed session revocations over the bound; asking auth meanwhile")
        self._revoked[session_id] = now + self._retain

    def clear(self) -> None:
        """A resync starts: the pushed set is dropped (the stream sends it again)."""
        self._revoked.clear()
        self._untrusted_until = float("-inf")

    async def _asked(self, session_id: str) -> bool:
        pending = self._inflight.get(session_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(session_id))
            self._inflight[session_id] = pending
            pending.add_done_callback(lambda done: self._settled(session_id, done))
        # shielded: one caller giving up does not cancel the others' shared question
        return await asyncio.shield(pending)

    def _settled(self, session_id: str, done: asyncio.Future[bool]) -> None:
        if self._inflight.get(session_id) is done:
            del self._inflight[session_id]
        if not done.cancelled():
            done.exception()  # retrieved here too: a waiter that gave up leaves no warning

    async def _fetch(self, session_id: str) -> bool:
        asked_at = self._clock()
        try:
            active = await self._ask(session_id)
        except Exception as exc:  # noqa: BLE001 - any failure to tell fails closed
            _log.warning("session state unavailable", extra={"error": type(exc).__name__})
            # auth's own outage reason (e.g. DATABASE_UNAVAILABLE) is kept; anything else,
            # an unreachable auth included, is the edge's usual SERVICE_UNAVAILABLE
            reason, retry_after = _UNAVAILABLE, _RETRY_AFTER
            if isinstance(exc, Unavailable) and exc.reason not in _TRANSPORT_REASONS:
                reason = exc.reason
                retry_after = max(retry_after, exc.retry_after or 0.0)
            raise Unavailable(
                "the session could not be checked; retry later",
                reason=reason,
                retry_after=retry_after,
            ) from None
        active = active is True
        if session_id in self._revoked:
            active = False  # pushed while the question was in flight
        self._remember(session_id, asked_at + self._ttl, active)
        return active

    def _remember(self, session_id: str, stale_at: float, active: bool) -> None:
        now = self._clock()
        self._answers.pop(session_id, None)
        while self._answers:
            oldest, (oldest_stale_at, _) = next(iter(self._answers.items()))
            if oldest_stale_at > now and len(self._answers) < self._max:
                break
            del self._answers[oldest]  # stale, or the bound: an answer is only a saved RPC
        if stale_at > now:
            self._answers[session_id] = (stale_at, active)
