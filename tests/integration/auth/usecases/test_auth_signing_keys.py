from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest
from auth_service.domain import KeyState, RotationPolicy, SigningKey, plan_rotation

from .conftest import PASSWORD, Env

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
POLICY = RotationPolicy()


def _key(kid: str, state: KeyState, created: dt.datetime, **kw: dt.datetime) -> SigningKey:
    return SigningKey(kid, state, b"\0" * 32, "sealed", created, **kw)


def test_first_start_creates_a_current_and_a_next_key() -> None:
    plan = plan_rotation([], T0, POLICY)
    assert plan.create_current and plan.create_next and plan.promote is None


def test_nothing_happens_before_the_interval() -> None:
    keys = [_key("a", KeyState.CURRENT, T0, activated_at=T0), _key("b", KeyState.NEXT, T0)]
    assert plan_rotation(keys, T0 + POLICY.interval - dt.timedelta(seconds=1), POLICY).empty


def test_after_the_interval_next_signs_and_current_retires() -> None:
    keys = [_key("a", KeyState.CURRENT, T0, activated_at=T0), _key("b", KeyState.NEXT, T0)]
    plan = plan_rotation(keys, T0 + POLICY.interval, POLICY)
    assert plan.promote == "b" and plan.retire == ("a",) and plan.create_next


def test_a_next_key_signs_only_after_it_was_published_for_the_cache_ttl() -> None:
    late = T0 + POLICY.interval - dt.timedelta(minutes=1)
    keys = [_key("a", KeyState.CURRENT, T0, activated_at=T0), _key("b", KeyState.NEXT, late)]
    assert plan_rotation(keys, T0 + POLICY.interval, POLICY).empty
    assert plan_rotation(keys, late + POLICY.jwks_cache, POLICY).promote == "b"


def test_a_retired_key_is_dropped_once_its_tokens_expired() -> None:
    until = T0 + POLICY.verify_overlap
    keys = [
        _key("a", KeyState.CURRENT, T0, activated_at=T0),
        _key("b", KeyState.NEXT, T0),
        _key("r", KeyState.RETIRED, T0, retired_at=T0, verify_until=until),
    ]
    assert plan_rotation(keys, until - dt.timedelta(seconds=1), POLICY).empty
    assert plan_rotation(keys, until, POLICY).drop == ("r",)


def test_two_current_keys_after_a_race_keep_the_newest() -> None:
    keys = [
        _key("a", KeyState.CURRENT, T0, activated_at=T0),
        _key("b", KeyState.CURRENT, T0, activated_at=T0 + dt.timedelta(seconds=1)),
        _key("n", KeyState.NEXT, T0),
    ]
    plan = plan_rotation(keys, T0 + dt.timedelta(minutes=1), POLICY)
    assert plan.retire == ("a",) and plan.promote is None and not plan.create_next


def _kids(jwks: str) -> list[str]:
    return [k["kid"] for k in json.loads(jwks)["keys"]]


async def test_rotation_through_the_use_case(env: Env) -> None:
    await env.auth.accounts.sign_up("alice@example.com", PASSWORD, "")
    start = _kids(await env.auth.signing_keys.jwks())
    assert len(start) == 2  # current first, then next
    old, upcoming = start
    token = (await env.auth.sessions.login("alice@example.com", PASSWORD)).access_token
    assert jwt.get_unverified_header(token)["kid"] == old

    env.clock.advance(env.config.rotation.interval.total_seconds())
    await env.auth.signing_keys.rotate_signing_keys()
    kids = _kids(await env.auth.signing_keys.jwks())
    assert kids[0] == upcoming and old in kids and len(kids) == 3  # current, new next, retired
    token = (await env.auth.sessions.login("alice@example.com", PASSWORD)).access_token
    assert jwt.get_unverified_header(token)["kid"] == upcoming

    env.clock.advance(env.config.rotation.verify_overlap.total_seconds())
    await env.auth.signing_keys.rotate_signing_keys()
    assert old not in _kids(await env.auth.signing_keys.jwks())


async def test_jwks_holds_public_keys_only(env: Env) -> None:
    for jwk in json.loads(await env.auth.signing_keys.jwks())["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )


@pytest.mark.parametrize("runs", [1, 3])
async def test_rotation_is_idempotent(env: Env, runs: int) -> None:
    for _ in range(runs):
        await env.auth.signing_keys.rotate_signing_keys()
    assert len(_kids(await env.auth.signing_keys.jwks())) == 2
