"""Audit events and retention in the keys use cases, against the in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from keys_service.usecases import KeysRetention
from servicekit.errors import FailedPrecondition, NotFound, RailguardError
from servicekit.throttle import AuditThrottle
from servicekit.usecase import Collaborators

from .fakes_keys import FakeUow, minted_key
from .test_keys_usecases import ALICE, BOB, WS, Harness, h  # noqa: F401

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_denial_throttle_allows_one_per_key_and_reason_per_window() -> None:
    throttle = AuditThrottle(timedelta(minutes=1), max_entries=3)
    assert throttle.allow("k1", "KEY_REVOKED", T0)
    assert not throttle.allow("k1", "KEY_REVOKED", T0 + timedelta(seconds=59))
    assert throttle.allow("k1", "SCOPE_NOT_GRANTED", T0)
    assert throttle.allow("k2", "KEY_REVOKED", T0)
    assert throttle.allow("k1", "KEY_REVOKED", T0 + timedelta(minutes=1))
    # bounded: a fourth slot evicts what has aged out, or clears the table
    assert throttle.allow("k3", "KEY_REVOKED", T0 + timedelta(seconds=30))
    assert len(throttle._last) <= 3


async def test_events_are_recorded_only_when_the_change_commits(h: Harness) -> None:  # noqa: F811
    view = await h.create()
    await h.service.revoke(ALICE, WS, view.key.id)
    await h.service.revoke(ALICE, WS, view.key.id)  # idempotent: no second event
    with pytest.raises(RailguardError):
        await h.service.rotate(ALICE, WS, view.key.id, timedelta(0))
    assert [e.action for e in h.keys.events] == ["apiKey.create", "apiKey.revoke"]
    assert {e.actor for e in h.keys.events} == {"user:alice"}
    assert view.secret is not None
    assert not [e for e in h.keys.events if view.secret in e.to_json()]


async def test_purge_keeps_a_tombstone_and_refuses_restore(h: Harness) -> None:  # noqa: F811
    view = await h.create()
    key_id = view.key.id
    await h.service.delete(ALICE, WS, key_id)
    job = KeysRetention(
        Collaborators(uow=lambda: FakeUow(h.keys), clock=h.clock), timedelta(days=30)
    )
    h.clock.advance(days=30, seconds=-1)
    assert await job.purge_expired() == []
    h.clock.advance(seconds=1)
    with pytest.raises(FailedPrecondition) as refused:
        await h.service.undelete(ALICE, WS, key_id)
    assert refused.value.reason == "KEY_PURGED"
    assert await job.purge_expired() == [key_id]
    tomb = h.keys.rows[key_id]
    assert tomb.secret_hash is None and tomb.previous_secret_hash is None
    assert tomb.purged_at == h.clock.now() and tomb.name == view.key.name
    with pytest.raises(NotFound) as err:
        await h.service.get(ALICE, WS, key_id)
    assert err.value.reason == "KEY_PURGED"
    with pytest.raises(NotFound) as err:
        await h.service.get(BOB, WS, key_id)  # BOB could never see it
    assert err.value.reason == "KEY_NOT_FOUND"
    assert view.secret is not None
    with pytest.raises(RailguardError) as denied:
        await h.verify(view.secret)
    assert denied.value.reason == "KEY_NOT_FOUND"
    purge = h.keys.events[-1]
    assert (purge.action, purge.actor) == ("apiKey.purge", "system")


def test_a_tombstone_cannot_come_back() -> None:
    from keys_service.domain import PepperRing

    ring = PepperRing({1: b"1" * 32}, current=1)
    key, _ = minted_key(ring, key_id="k", workspace_id="w", now=T0)
    with pytest.raises(FailedPrecondition):
        key.purge(now=T0)
    tomb = key.delete(now=T0).purge(now=T0 + timedelta(days=30))
    assert tomb.purge(now=T0 + timedelta(days=31)) is tomb
    with pytest.raises(FailedPrecondition) as err:
        tomb.undelete(now=T0 + timedelta(days=31))
    assert err.value.reason == "KEY_PURGED"
    with pytest.raises(FailedPrecondition):
        tomb.rotate(ring, now=T0 + timedelta(days=31), grace=timedelta(0))
