"""Refresh-token rotation and reuse detection on the in-memory fakes."""

from __future__ import annotations

from auth_service.domain.refresh_token import PREFIX
from servicekit.audit import Outcome

from .conftest import Env
from .helpers import claims, reason, user


async def test_each_refresh_rotates_the_token_and_keeps_the_session(env: Env) -> None:
    _, pair = await user(env)
    env.clock.advance(60)
    second = await env.auth.refresh.refresh(pair.refresh_token)
    assert second.refresh_token != pair.refresh_token
    assert claims(second)["sid"] == claims(pair)["sid"]
    third = await env.auth.refresh.refresh(second.refresh_token)
    assert third.refresh_token not in (pair.refresh_token, second.refresh_token)


async def test_a_lost_race_within_grace_gets_the_same_child(env: Env) -> None:
    _, pair = await user(env)
    first = await env.auth.refresh.refresh(pair.refresh_token)
    again = await env.auth.refresh.refresh(pair.refresh_token)  # a retry, within the grace
    assert again.refresh_token == first.refresh_token
    assert not await env.audit("refreshToken.reuse")


async def test_reuse_after_grace_revokes_the_whole_family(env: Env) -> None:
    user_id, pair = await user(env)
    child = await env.auth.refresh.refresh(pair.refresh_token)
    env.clock.advance(env.config.sessions.grace.total_seconds() + 1)
    assert await reason(env.auth.refresh.refresh(pair.refresh_token)) == "INVALID_REFRESH_TOKEN"
    # the legitimate holder's newer token dies with the family
    assert await reason(env.auth.refresh.refresh(child.refresh_token)) == "INVALID_REFRESH_TOKEN"
    [event] = await env.audit("refreshToken.reuse")
    sid = claims(pair)["sid"]
    assert (event.outcome, event.actor, event.target) == (
        Outcome.DENIED,
        "system",
        f"users/{user_id}/sessions/{sid}",
    )
    assert event.metadata == {
        "session_id": sid,
        "user_id": user_id,
        "reason": "refresh_token_reuse",
        "family_revoked": "true",
    }
    assert pair.refresh_token not in repr(event) and child.refresh_token not in repr(event)
    assert env.store.tables.sessions[sid].revoke_reason == "refresh_token_reuse"


async def test_the_grace_child_is_sealed_and_forgotten_later(env: Env) -> None:
    _, pair = await user(env)
    child = await env.auth.refresh.refresh(pair.refresh_token)
    sealed = [r.sealed_child for r in env.store.tables.refresh.values() if r.sealed_child]
    assert len(sealed) == 1 and child.refresh_token not in sealed[0]
    env.clock.advance(env.config.sessions.grace.total_seconds() + 1)
    assert await env.auth.refresh.forget_grace_secrets() == 1
    assert not any(r.sealed_child for r in env.store.tables.refresh.values())


async def test_malformed_unknown_and_deleted_users_tokens_are_one_error(env: Env) -> None:
    user_id, pair = await user(env)
    assert await reason(env.auth.refresh.refresh("not-a-token")) == "INVALID_REFRESH_TOKEN"
    assert await reason(env.auth.refresh.refresh(PREFIX + "A" * 43)) == "INVALID_REFRESH_TOKEN"
    await env.auth.accounts.delete_user(user_id)
    assert await reason(env.auth.refresh.refresh(pair.refresh_token)) == "INVALID_REFRESH_TOKEN"
