"""Login, logout and session listing on the in-memory fakes."""

from __future__ import annotations

import pytest
from auth_service.usecases import ChallengeIssued, TokenPair
from servicekit.audit import Outcome
from servicekit.errors import ResourceExhausted, Unauthenticated

from .conftest import PASSWORD, Env
from .helpers import EMAIL, claims, enrolled, reason, user


async def test_a_login_starts_an_aal1_session_and_records_it(env: Env) -> None:
    user_id, pair = await user(env)
    c = claims(pair)
    assert (c["sub"], c["aal"], c["amr"]) == (user_id, "aal1", ["pwd"])
    assert pair.expires_in == 600
    [event] = await env.audit("user.login")
    assert event.outcome is Outcome.SUCCESS
    assert event.metadata == {"method": "password", "session_id": c["sid"], "aal": "aal1"}
    assert PASSWORD not in repr(event)


async def test_wrong_password_and_unknown_account_get_one_answer(env: Env) -> None:
    user_id, _ = await user(env)
    errors = []
    for address in (EMAIL, "ghost@example.com"):
        with pytest.raises(Unauthenticated) as err:
            await env.auth.sessions.login(address, "not the password!", "10.0.0.1")
        errors.append((err.value.reason, str(err.value)))
    assert (
        errors[0]
        == errors[1]
        == (
            "INVALID_CREDENTIALS",
            "the email address or password is incorrect",
        )
    )
    assert env.hasher.dummy_calls == 1  # the unknown account still costs a hash
    refused = [e for e in await env.audit("user.login") if e.outcome is Outcome.DENIED]
    assert [(e.target, e.actor, e.metadata["reason"]) for e in refused] == [
        (f"users/{user_id}", f"user:{user_id}", "INVALID_PASSWORD"),
        ("users/-", "anonymous", "UNKNOWN_ACCOUNT"),
    ]
    assert all("ghost" not in repr(e) for e in refused)


async def test_failures_back_off_per_account_and_a_success_clears_them(env: Env) -> None:
    await user(env)
    for i in range(5):  # five free failures, each from another IP
        with pytest.raises(Unauthenticated):
            await env.auth.sessions.login(EMAIL, "not the password!", f"10.0.0.{i}")
    with pytest.raises(ResourceExhausted) as err:
        await env.auth.sessions.login(EMAIL, PASSWORD, "10.0.1.1")  # even the right one waits
    assert err.value.reason == "LOGIN_THROTTLED"
    env.clock.advance(2)
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD), TokenPair)
    # the success reset the account's counter: five more failures are free again
    for i in range(5):
        with pytest.raises(Unauthenticated):
            await env.auth.sessions.login(EMAIL, "not the password!", f"10.0.2.{i}")


async def test_an_unknown_account_is_throttled_like_a_known_one(env: Env) -> None:
    await user(env)
    answers = set()
    for address in (EMAIL, "ghost@example.com"):
        for i in range(5):
            with pytest.raises(Unauthenticated):
                await env.auth.sessions.login(address, "not the password!", f"10.{i}.0.1")
        answers.add(await reason(env.auth.sessions.login(address, "x" * 12, "10.9.0.1")))
    assert answers == {"LOGIN_THROTTLED"}


async def test_an_outdated_hash_is_upgraded_at_login(env: Env) -> None:
    user_id, _ = await user(env)
    env.hasher.version = 2
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD), TokenPair)
    assert env.store.tables.users[user_id].password_hash.startswith("fake$v2$")
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD), TokenPair)


async def test_a_user_with_a_factor_gets_a_challenge_not_tokens(env: Env) -> None:
    await enrolled(env)
    result = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(result, ChallengeIssued)
    assert result.methods == ("totp", "recovery_code") and result.expires_in == 300
    last = (await env.audit("user.login"))[-1]
    assert last.metadata["mfa_required"] == "true" and "session_id" not in last.metadata


async def test_logout_and_revoke_end_only_the_callers_own_sessions(env: Env) -> None:
    alice, pair = await user(env)
    bob, bob_pair = await user(env, "bob@example.com")
    sid = claims(pair)["sid"]
    assert await reason(env.auth.sessions.logout(bob, sid)) == "SESSION_NOT_FOUND"
    assert await reason(env.auth.sessions.revoke_session(bob, sid)) == "SESSION_NOT_FOUND"
    assert await reason(env.auth.sessions.logout(alice, "")) == "NO_SESSION"
    await env.auth.sessions.revoke_session(alice, sid)
    assert await reason(env.auth.refresh.refresh(pair.refresh_token)) == "INVALID_REFRESH_TOKEN"
    assert await env.auth.refresh.refresh(bob_pair.refresh_token)
    assert [e.metadata["reason"] for e in await env.audit("session.revoke")] == ["revoked_by_user"]


async def test_sessions_are_listed_newest_first_in_pages(env: Env) -> None:
    user_id, _ = await user(env)
    for _ in range(4):
        env.clock.advance(1)
        await env.auth.sessions.login(EMAIL, PASSWORD)
    first, token = await env.auth.sessions.list_sessions(user_id, 3, "")
    rest, end = await env.auth.sessions.list_sessions(user_id, 3, token)
    assert len(first) == 3 and len(rest) == 2 and end == ""
    stamps = [s.created_at for s in first + rest]
    assert stamps == sorted(stamps, reverse=True)
    assert len({s.id for s in first + rest}) == 5
