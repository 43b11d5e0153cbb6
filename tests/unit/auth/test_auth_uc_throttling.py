"""The throttling collaborator on its own: reserve, refund on refusal, settle, fail closed."""

from __future__ import annotations

import datetime as dt

import pytest
from auth_service.domain import ThrottlePolicy, ThrottleState
from auth_service.usecases import Bucket, ThrottlePolicies, Throttling
from servicekit.errors import ResourceExhausted
from testkit import FakeClock

from .fakes import FakeStore, FakeThrottle, FakeUnitOfWork

TIGHT = ThrottlePolicy(free_failures=1, hourly_cap=100)


def _throttling(store: FakeStore, clock: FakeClock) -> Throttling:
    return Throttling(store.uow, clock, ThrottlePolicies())


async def test_a_refused_reservation_counts_on_no_bucket() -> None:
    store, clock = FakeStore(), FakeClock()
    throttling = _throttling(store, clock)
    loose, tight = Bucket("loose", ThrottlePolicy()), Bucket("tight", TIGHT)
    await throttling.reserve([loose], "X")
    await throttling.reserve([tight], "X")  # the first failure starts a backoff
    commits = store.commits
    with pytest.raises(ResourceExhausted) as err:
        await throttling.reserve([loose, tight], "SOME_THROTTLED")
    assert err.value.reason == "SOME_THROTTLED" and err.value.retry_after == 1.0
    assert store.tables.throttle["loose"].failures == 1  # not counted, so nothing to give back
    assert store.tables.throttle["tight"].failures == 1
    assert store.commits == commits


async def test_a_reservation_is_one_transaction_over_every_bucket() -> None:
    store, clock = FakeStore(), FakeClock()
    throttling = _throttling(store, clock)
    a, b = Bucket("b", ThrottlePolicy()), Bucket("a", ThrottlePolicy())
    await throttling.reserve([a, b, a], "X")  # a bucket named twice counts once
    assert store.commits == 1
    assert store.tables.throttle["a"].failures == store.tables.throttle["b"].failures == 1


async def test_a_lost_compare_and_set_retries_the_whole_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lost = {"left": 1}
    real_store = FakeThrottle.store

    async def lose_once(
        self: FakeThrottle, key: str, expected: ThrottleState | None, new: ThrottleState
    ) -> bool:
        if key == "b" and lost["left"]:
            lost["left"] -= 1
            return False
        return await real_store(self, key, expected, new)

    monkeypatch.setattr(FakeThrottle, "store", lose_once)
    store = FakeStore()
    throttling = _throttling(store, FakeClock())
    await throttling.reserve([Bucket("a", ThrottlePolicy()), Bucket("b", ThrottlePolicy())], "X")
    # the round that lost on "b" stored "a" too and was rolled back: "a" counts once, not twice
    assert store.tables.throttle["a"].failures == store.tables.throttle["b"].failures == 1
    assert store.commits == 1


async def test_settle_in_counts_only_when_the_caller_commits() -> None:
    store, clock = FakeStore(), FakeClock()
    throttling = _throttling(store, clock)
    a, b = Bucket("a", ThrottlePolicy()), Bucket("b", ThrottlePolicy())
    await throttling.reserve([a, b], "X")
    async with store.uow() as uow:
        await throttling.settle_in(uow, reset=[a], refund=[b])  # never committed
    assert store.tables.throttle["a"].failures == store.tables.throttle["b"].failures == 1
    async with store.uow() as uow:
        await throttling.settle_in(uow, reset=[a], refund=[b])
        await uow.commit()
    assert "a" not in store.tables.throttle and store.tables.throttle["b"].failures == 0


async def test_settle_resets_some_counters_and_refunds_others() -> None:
    store, clock = FakeStore(), FakeClock()
    throttling = _throttling(store, clock)
    a, b = Bucket("a", ThrottlePolicy()), Bucket("b", ThrottlePolicy())
    for _ in range(3):
        await throttling.reserve([a, b], "X")
    await throttling.settle(reset=[a], refund=[b])
    assert "a" not in store.tables.throttle
    assert store.tables.throttle["b"].failures == 2


async def test_endless_contention_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def always_lose(
        self: FakeThrottle, key: str, expected: ThrottleState | None, new: ThrottleState
    ) -> bool:
        return False

    monkeypatch.setattr(FakeThrottle, "store", always_lose)
    store = FakeStore()
    throttling = _throttling(store, FakeClock())
    with pytest.raises(ResourceExhausted) as err:
        await throttling.reserve([Bucket("k", ThrottlePolicy())], "CONTENDED")
    assert err.value.retry_after == 1.0


async def test_counter_keys_never_hold_an_address() -> None:
    throttling = _throttling(FakeStore(), FakeClock())
    keys = [throttling.login_account("alice@example.com").key]
    keys += [b.key for b in throttling.mail("reset", "alice@example.com", "10.0.0.1")]
    assert all("alice" not in k for k in keys)
    assert throttling.login_ip("").key == "login:ip:-"
    assert throttling.idle_after() == dt.timedelta(hours=12)


async def test_the_fake_unit_of_work_drops_what_is_not_committed() -> None:
    store = FakeStore()
    async with FakeUnitOfWork(store) as uow:
        await uow.secrets.add_if_absent("pepper", "sealed", FakeClock().now())
    assert store.tables.secrets == {}
    async with store.uow() as uow:
        await uow.secrets.add_if_absent("pepper", "sealed", FakeClock().now())
        await uow.commit()
    assert store.tables.secrets == {"pepper": "sealed"} and store.commits == 1
