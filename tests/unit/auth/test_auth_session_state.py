"""SessionState: a session is active while it exists, is not revoked and has not ended.

Every way a session ends answers "not active" at once (the edge refuses its access tokens from
that answer); other sessions are untouched.
"""

from __future__ import annotations

import jwt
import pytest
from auth_service.domain import Assurance
from auth_service.usecases import TokenPair
from auth_service.usecases.session_state import SessionState
from servicekit.errors import InvalidArgument, Unauthenticated

from .conftest import PASSWORD, Env

EMAIL = "alice@example.com"


def _state(env: Env) -> SessionState:
    return SessionState(env.store.uow, env.clock)


def _recent(env: Env) -> Assurance:
    return Assurance(auth_time=int(env.clock.now().timestamp()))


def _sid(pair: TokenPair) -> str:
    return str(jwt.decode(pair.access_token, options={"verify_signature": False})["sid"])


async def _login(env: Env) -> TokenPair:
    pair = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(pair, TokenPair)
    return pair


@pytest.fixture
async def user_id(env: Env) -> str:
    return (await env.auth.accounts.sign_up(EMAIL, PASSWORD, "Alice")).id


async def test_a_fresh_session_is_active(env: Env, user_id: str) -> None:
    assert await _state(env).active(_sid(await _login(env)))


async def test_an_unknown_session_is_not_active(env: Env, user_id: str) -> None:
    assert not await _state(env).active("0" * 32)
    assert not await _state(env).active("x" * 10_000)  # never looked up


async def test_an_empty_session_id_is_refused(env: Env) -> None:
    with pytest.raises(InvalidArgument) as err:
        await _state(env).active("")
    assert err.value.reason == "INVALID_SESSION_ID"


async def test_logout_ends_only_that_session(env: Env, user_id: str) -> None:
    here, there = await _login(env), await _login(env)
    await env.auth.sessions.logout(user_id, _sid(here))
    assert not await _state(env).active(_sid(here))
    assert await _state(env).active(_sid(there))


async def test_revoke_session_ends_it(env: Env, user_id: str) -> None:
    pair = await _login(env)
    await env.auth.sessions.revoke_session(user_id, _sid(pair))
    assert not await _state(env).active(_sid(pair))


async def test_a_password_change_ends_the_other_sessions(env: Env, user_id: str) -> None:
    here, there = await _login(env), await _login(env)
    await env.auth.passwords.change_password(
        user_id, _sid(here), PASSWORD, "an entirely new passphrase", _recent(env)
    )
    assert await _state(env).active(_sid(here))
    assert not await _state(env).active(_sid(there))


async def test_refresh_token_reuse_ends_the_session(env: Env, user_id: str) -> None:
    pair = await _login(env)
    await env.auth.refresh.refresh(pair.refresh_token)
    env.clock.advance(30)  # past the grace window: a replay is reuse
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(pair.refresh_token)
    assert not await _state(env).active(_sid(pair))


async def test_account_deletion_ends_every_session(env: Env, user_id: str) -> None:
    one, two = await _login(env), await _login(env)
    await env.auth.accounts.delete_account(user_id, _recent(env))
    assert not await _state(env).active(_sid(one))
    assert not await _state(env).active(_sid(two))


async def test_an_idle_session_ends(env: Env, user_id: str) -> None:
    pair = await _login(env)
    env.clock.advance(env.config.sessions.idle.total_seconds() - 1)
    assert await _state(env).active(_sid(pair))
    env.clock.advance(1)
    assert not await _state(env).active(_sid(pair))


async def test_a_session_past_its_absolute_lifetime_ends_even_when_used(
    env: Env, user_id: str
) -> None:
    pair = await _login(env)
    refresh = pair.refresh_token
    step = env.config.sessions.idle.total_seconds() / 2
    elapsed = 0.0
    while elapsed + step < env.config.sessions.absolute.total_seconds():
        env.clock.advance(step)
        elapsed += step
        refresh = (await env.auth.refresh.refresh(refresh)).refresh_token
    assert await _state(env).active(_sid(pair))
    env.clock.advance(env.config.sessions.absolute.total_seconds() - elapsed)
    assert not await _state(env).active(_sid(pair))
