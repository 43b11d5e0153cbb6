"""SessionGuard: pushed revocations decide while live; otherwise auth is asked (answers kept at
most ask_ttl, bounded, shared), and an auth outage fails closed as a retryable Unavailable."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from edge_service.sessions import DEFAULT_RETAIN_SECONDS, SessionGuard
from servicekit import errors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Auth:
    """GetSessionState: active unless ended; counts questions; can be down or slow."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.ended: set[str] = set()
        self.asked: list[str] = []
        self.failure: BaseException | None = None
        self.takes = 0.0  # seconds of the fake clock one answer takes
        self.gate: asyncio.Event | None = None

    async def active(self, session_id: str) -> bool:
        self.asked.append(session_id)
        if self.gate is not None:
            await self.gate.wait()
        self.clock.now += self.takes
        if self.failure is not None:
            raise self.failure
        return session_id not in self.ended


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> Auth:
    return Auth(clock)


def guard(auth: Auth, clock: Clock, live: bool = False, **kwargs: float) -> SessionGuard:
    return SessionGuard(auth.active, live=lambda: live, clock=clock, **kwargs)  # type: ignore[arg-type]


async def refused(g: SessionGuard, session_id: str, token_lifetime: float = 0.0) -> str:
    with pytest.raises(errors.Unauthenticated) as err:
        await g.check(session_id, token_lifetime=token_lifetime)
    return err.value.reason


# ---- asking ------------------------------------------------------------------------------------


async def test_an_active_session_passes_and_an_ended_one_is_revoked(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock)
    auth.ended.add("gone")
    await g.check("alive")
    assert await refused(g, "gone") == "SESSION_REVOKED"
    assert auth.asked == ["alive", "gone"]


async def test_answers_are_kept_at_most_ask_ttl(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock, ask_ttl=0.5)
    await g.check("s")
    auth.ended.add("s")  # ended at auth; this edge has not been told
    clock.now += 0.49
    await g.check("s")  # the cached answer, still fresh
    assert auth.asked == ["s"]
    clock.now += 0.01
    assert await refused(g, "s") == "SESSION_REVOKED"
    assert auth.asked == ["s", "s"]


async def test_the_ttl_counts_from_when_the_question_was_asked(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock, ask_ttl=0.5)
    auth.takes = 0.4  # a slow answer is already 0.4 s old when it arrives
    await g.check("s")
    auth.takes = 0.0
    clock.now += 0.1  # 0.5 s after the question
    await g.check("s")
    assert auth.asked == ["s", "s"]


async def test_a_negative_answer_is_cached_too(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock, ask_ttl=0.5)
    auth.ended.add("gone")
    for _ in range(5):
        assert await refused(g, "gone") == "SESSION_REVOKED"
    assert auth.asked == ["gone"]


async def test_a_negative_answer_still_refuses_once_live(auth: Auth, clock: Clock) -> None:
    live = [False]
    g = SessionGuard(auth.active, live=lambda: live[0], clock=clock)
    auth.ended.add("gone")
    assert await refused(g, "gone") == "SESSION_REVOKED"
    live[0] = True  # the stream is up, and its set lacks "gone" (say, pushed before a resync)
    clock.now += 5  # long past ask_ttl: an ended session does not come back
    assert await refused(g, "gone") == "SESSION_REVOKED"
    assert auth.asked == ["gone"]


async def test_the_answer_cache_is_bounded(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock, ask_ttl=60, max_entries=2)
    for session in ("a", "b", "c"):
        await g.check(session)
    await g.check("c")
    await g.check("b")
    assert auth.asked == ["a", "b", "c"]
    await g.check("a")  # evicted by the bound: asked again
    assert auth.asked == ["a", "b", "c", "a"]
    assert len(g._answers) <= 2


async def test_concurrent_checks_of_one_session_share_one_question(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock)
    auth.gate = asyncio.Event()
    checks = [asyncio.create_task(g.check("s")) for _ in range(20)]
    await asyncio.sleep(0)
    auth.gate.set()
    await asyncio.gather(*checks)
    assert auth.asked == ["s"]


async def test_a_caller_giving_up_does_not_cancel_the_shared_question(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock)
    auth.gate = asyncio.Event()
    first, second = asyncio.create_task(g.check("s")), asyncio.create_task(g.check("s"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    auth.gate.set()
    await second
    assert first.cancelled() and auth.asked == ["s"]


@pytest.mark.parametrize(
    "failure",
    [
        errors.Unavailable("auth is down", reason="DEPENDENCY_UNAVAILABLE"),
        errors.PermissionDenied("not allowed", reason="CALLER_NOT_ALLOWED"),
        RuntimeError("boom"),
        grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()),
    ],
)
async def test_an_auth_outage_fails_closed_as_retryable_unavailable(
    auth: Auth, clock: Clock, failure: BaseException
) -> None:
    g = guard(auth, clock)
    auth.failure = failure
    with pytest.raises(errors.Unavailable) as err:
        await g.check("s")
    assert err.value.reason == "SERVICE_UNAVAILABLE"
    assert err.value.retry_after == 1.0
    assert "boom" not in err.value.message
    auth.failure = None  # back: the failure was not remembered
    await g.check("s")
    assert auth.asked == ["s", "s"]


async def test_auths_own_outage_reason_and_delay_are_kept(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock)
    auth.failure = errors.Unavailable(
        "the database is down", reason="DATABASE_UNAVAILABLE", retry_after=3.0
    )
    with pytest.raises(errors.Unavailable) as err:
        await g.check("s")
    assert (err.value.reason, err.value.retry_after) == ("DATABASE_UNAVAILABLE", 3.0)
    assert "database" not in err.value.message  # the edge's own words


async def test_an_answer_that_is_not_true_is_not_active(clock: Clock) -> None:
    async def odd(session_id: str) -> bool:
        return 1  # type: ignore[return-value]

    g = SessionGuard(odd, clock=clock)
    assert await refused(g, "s") == "SESSION_REVOKED"


# ---- pushed ------------------------------------------------------------------------------------


async def test_live_decides_from_the_pushed_set_without_asking(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock, live=True)
    auth.ended.add("gone")  # auth knows, but only the push counts while live
    await g.check("alive")
    await g.check("gone")
    g.revoke("gone")
    assert await refused(g, "gone") == "SESSION_REVOKED"
    assert auth.asked == []


async def test_a_pushed_revocation_overrides_a_cached_answer_when_asking(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock, ask_ttl=60)
    await g.check("s")
    g.revoke("s")
    assert await refused(g, "s") == "SESSION_REVOKED"
    assert auth.asked == ["s"]  # refused from the push, no question


async def test_a_revocation_pushed_while_asking_wins_over_the_answer(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock, ask_ttl=60)
    auth.gate = asyncio.Event()
    check = asyncio.create_task(g.check("s"))
    await asyncio.sleep(0)
    g.revoke("s")  # the answer in flight ("active") is older than this
    auth.gate.set()
    with pytest.raises(errors.Unauthenticated):
        await check
    g.clear()  # even with the pushed set gone, the cached answer is the negative one
    assert await refused(g, "s") == "SESSION_REVOKED"
    assert auth.asked == ["s"]


async def test_a_revocation_is_kept_as_long_as_an_access_token_lives(
    auth: Auth, clock: Clock
) -> None:
    assert DEFAULT_RETAIN_SECONDS >= 600 + 5  # the default TTL and the verifier's leeway
    g = guard(auth, clock, live=True)
    g.revoke("s")
    clock.now += DEFAULT_RETAIN_SECONDS - 1
    g.revoke("other")  # prunes only what no token can need
    assert await refused(g, "s") == "SESSION_REVOKED"
    clock.now += 2
    g.revoke("another")
    assert "s" not in g._revoked  # bounded in time: no token of it is alive any more


async def test_a_token_outliving_the_pushed_entries_is_asked_about(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock, live=True, retain=660)
    auth.ended.add("gone")  # its revocation may have been pushed, and forgotten, long ago
    await g.check("gone", token_lifetime=660)  # covered: the pushed set decides
    assert auth.asked == []
    assert await refused(g, "gone", token_lifetime=3600) == "SESSION_REVOKED"
    assert auth.asked == ["gone"]


async def test_over_the_bound_the_pushed_set_is_not_trusted_but_nothing_is_forgotten(
    auth: Auth, clock: Clock
) -> None:
    g = guard(auth, clock, live=True, max_entries=2, retain=100)
    auth.ended.update({"a", "b", "c"})
    g.revoke("a")
    clock.now += 10
    g.revoke("b")
    g.revoke("c")  # "a" is dropped while a token of it may live: stop trusting the set
    assert len(g._revoked) == 2 and not g.trusted
    assert await refused(g, "a") == "SESSION_REVOKED"  # asked: auth says ended
    await g.check("fresh")  # asked too, though live
    assert auth.asked == ["a", "fresh"]
    clock.now += 90  # "a" would have expired from the set by now: trust again
    assert g.trusted
    await g.check("other")
    assert auth.asked == ["a", "fresh"]
    assert await refused(g, "b") == "SESSION_REVOKED" and await refused(g, "c")


async def test_clear_drops_the_pushed_set_for_a_resync(auth: Auth, clock: Clock) -> None:
    g = guard(auth, clock, live=True, max_entries=1, retain=100)
    g.revoke("a")
    g.revoke("b")
    assert not g.trusted
    g.clear()
    assert g.trusted and not g._revoked
    await g.check("b")  # live again, from an empty set the resync refills
    assert auth.asked == []
    g.revoke("b")
    assert await refused(g, "b") == "SESSION_REVOKED"


async def test_a_live_guard_falls_back_to_asking_when_the_stream_is_not_live(
    auth: Auth, clock: Clock
) -> None:
    live = [True]
    g = SessionGuard(auth.active, live=lambda: live[0], clock=clock)
    auth.ended.add("gone")
    await g.check("gone")
    live[0] = False
    assert await refused(g, "gone") == "SESSION_REVOKED"
    assert auth.asked == ["gone"]


def test_max_entries_must_be_positive(auth: Auth) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        SessionGuard(auth.active, max_entries=0)
