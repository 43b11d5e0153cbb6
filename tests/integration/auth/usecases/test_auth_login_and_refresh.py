from __future__ import annotations

import datetime as dt

import jwt
import pytest
from auth_service.adapters.password_hasher import Argon2Hasher, Argon2Params
from auth_service.domain import Assurance
from auth_service.usecases import TokenPair
from servicekit.errors import InvalidArgument, NotFound, Unauthenticated
from sqlalchemy import text

from .conftest import PASSWORD, Env

EMAIL = "alice@example.com"


def _recent(env: Env) -> Assurance:
    """A principal that logged in just now (ChangePassword needs a recent login)."""
    return Assurance(auth_time=int(env.clock.now().timestamp()))


async def _signed_up(env: Env, email: str = EMAIL) -> str:
    return (await env.auth.accounts.sign_up(email, PASSWORD, "Alice")).id


async def _session_of(env: Env, pair: TokenPair) -> str:
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    return str(claims["sid"])


async def test_sign_up_lowercases_and_does_not_reveal_a_taken_email(env: Env) -> None:
    user = await env.auth.accounts.sign_up("  Alice@Example.COM ", PASSWORD, "Alice")
    assert user.email == EMAIL
    # Was EMAIL_TAKEN; issue 13 makes the answer the same for a registered address (the owner
    # is mailed instead), so a sign-up can no longer probe who has an account.
    again = await env.auth.accounts.sign_up(EMAIL.upper(), PASSWORD, "Other")
    assert again.email == EMAIL and again.id != user.id
    assert await env.auth.accounts.current_user(user.id)  # the account is untouched
    with pytest.raises(NotFound):
        await env.auth.accounts.current_user(again.id)  # the stand-in names no account


async def test_sign_up_refuses_a_bad_email(env: Env) -> None:
    with pytest.raises(InvalidArgument) as err:
        await env.auth.accounts.sign_up("not-an-email", PASSWORD, "")
    assert err.value.reason == "INVALID_EMAIL"


async def test_unknown_wrong_and_deleted_look_identical(env: Env) -> None:
    user_id = await _signed_up(env)
    errors: list[Unauthenticated] = []
    for email, password in [("nobody@example.com", PASSWORD), (EMAIL, PASSWORD + "x")]:
        with pytest.raises(Unauthenticated) as err:
            await env.auth.sessions.login(email, password)
        errors.append(err.value)
    await env.auth.accounts.delete_user(user_id)
    with pytest.raises(Unauthenticated) as err:
        await env.auth.sessions.login(EMAIL, PASSWORD)
    errors.append(err.value)
    assert {(e.reason, e.message) for e in errors} == {
        ("INVALID_CREDENTIALS", "the email address or password is incorrect")
    }
    assert env.hasher.dummy_calls == 2  # unknown and deleted both spent a verify


async def test_passwords_are_not_truncated_and_are_nfkc_normalised(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, "ｃｏｒｒｅｃｔ horse battery", "")
    assert await env.auth.sessions.login(EMAIL, "correct horse battery")
    for wrong in ["correct horse batter", "correct horse battery!"]:
        with pytest.raises(Unauthenticated):
            await env.auth.sessions.login(EMAIL, wrong)


async def test_login_rehashes_when_parameters_rise(env: Env) -> None:
    await _signed_up(env)
    env.hasher.version = 2
    await env.auth.sessions.login(EMAIL, PASSWORD)
    async with env.uow() as uow:
        user = await uow.users.by_email(EMAIL)
    assert user is not None and user.password_hash.startswith("fake$v2$")


async def test_argon2_rehash_upgrades_parameters_upward_only() -> None:
    floor = await Argon2Hasher.create(Argon2Params(1024, 1, 1), concurrency=2)
    assert floor.params == Argon2Params(19456, 2, 1)  # below the floor is raised to it
    stored = await floor.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not floor.needs_rehash(stored)
    stronger = await Argon2Hasher.create(Argon2Params(19456, 3, 1), concurrency=2)
    assert stronger.needs_rehash(stored)
    assert await stronger.verify(stored, PASSWORD)
    assert not await stronger.verify(stored, PASSWORD + "x")
    assert await floor.hash(PASSWORD) != stored  # unique salt
    assert PASSWORD not in repr(floor)


async def test_refresh_rotates(env: Env) -> None:
    await _signed_up(env)
    first = await env.auth.sessions.login(EMAIL, PASSWORD)
    second = await env.auth.refresh.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.refresh_token.startswith("rgr_")
    third = await env.auth.refresh.refresh(second.refresh_token)
    assert await _session_of(env, third) == await _session_of(env, first)


@pytest.mark.parametrize(
    ("after", "grace"), [(0.0, True), (10.0, True), (10.000001, False), (60.0, False)]
)
async def test_replaying_the_parent_within_10_s_returns_the_same_child(
    env: Env, after: float, grace: bool
) -> None:
    await _signed_up(env)
    parent = await env.auth.sessions.login(EMAIL, PASSWORD)
    child = await env.auth.refresh.refresh(parent.refresh_token)
    env.clock.advance(after)
    if grace:
        again = await env.auth.refresh.refresh(parent.refresh_token)
        assert again.refresh_token == child.refresh_token
        assert await env.auth.refresh.refresh(child.refresh_token)  # the family is intact
    else:
        with pytest.raises(Unauthenticated) as err:
            await env.auth.refresh.refresh(parent.refresh_token)
        assert err.value.reason == "INVALID_REFRESH_TOKEN"
        with pytest.raises(Unauthenticated):  # reuse revoked the whole family
            await env.auth.refresh.refresh(child.refresh_token)


async def test_replaying_a_grandparent_revokes_the_family_even_within_10_s(env: Env) -> None:
    await _signed_up(env)
    first = await env.auth.sessions.login(EMAIL, PASSWORD)
    second = await env.auth.refresh.refresh(first.refresh_token)
    third = await env.auth.refresh.refresh(second.refresh_token)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(first.refresh_token)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(third.refresh_token)


async def test_reuse_leaves_other_sessions_alone(env: Env) -> None:
    await _signed_up(env)
    laptop = await env.auth.sessions.login(EMAIL, PASSWORD)
    phone = await env.auth.sessions.login(EMAIL, PASSWORD)
    await env.auth.refresh.refresh(laptop.refresh_token)
    env.clock.advance(30)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(laptop.refresh_token)
    assert await env.auth.refresh.refresh(phone.refresh_token)


async def test_grace_secrets_are_forgotten_after_the_window(env: Env) -> None:
    await _signed_up(env)
    parent = await env.auth.sessions.login(EMAIL, PASSWORD)
    await env.auth.refresh.refresh(parent.refresh_token)
    env.clock.advance(11)
    assert await env.auth.refresh.forget_grace_secrets() == 1
    async with env.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT count(*) FROM refresh_tokens WHERE sealed_child IS NOT NULL")
        )
        assert rows.scalar_one() == 0


async def test_idle_expiry_is_14_days(env: Env) -> None:
    await _signed_up(env)
    pair = await env.auth.sessions.login(EMAIL, PASSWORD)
    env.clock.advance(dt.timedelta(days=13, hours=23).total_seconds())
    pair = await env.auth.refresh.refresh(pair.refresh_token)
    assert pair.refresh_expires_in == 14 * 86400
    env.clock.advance(14 * 86400)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(pair.refresh_token)


async def test_absolute_expiry_is_30_days_whatever_the_activity(env: Env) -> None:
    await _signed_up(env)
    pair = await env.auth.sessions.login(EMAIL, PASSWORD)
    for _ in range(2):
        env.clock.advance(dt.timedelta(days=10).total_seconds())
        pair = await env.auth.refresh.refresh(pair.refresh_token)
    env.clock.advance(dt.timedelta(days=9, hours=23).total_seconds())
    pair = await env.auth.refresh.refresh(pair.refresh_token)
    assert pair.refresh_expires_in == 3600
    env.clock.advance(3600)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(pair.refresh_token)


@pytest.mark.parametrize("junk", ["", "rgr_", "rgr_" + "a" * 42, "x" * 47, "rgr_" + "a" * 43])
async def test_junk_refresh_tokens_are_refused(env: Env, junk: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        await env.auth.refresh.refresh(junk)
    assert err.value.reason == "INVALID_REFRESH_TOKEN"


async def test_logout_ends_the_session(env: Env) -> None:
    user_id = await _signed_up(env)
    pair = await env.auth.sessions.login(EMAIL, PASSWORD)
    await env.auth.sessions.logout(user_id, await _session_of(env, pair))
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(pair.refresh_token)


async def test_change_password_revokes_every_other_session(env: Env) -> None:
    user_id = await _signed_up(env)
    here = await env.auth.sessions.login(EMAIL, PASSWORD)
    there = await env.auth.sessions.login(EMAIL, PASSWORD)
    new = "a completely new passphrase"
    await env.auth.passwords.change_password(
        user_id, await _session_of(env, here), PASSWORD, new, _recent(env)
    )
    assert await env.auth.refresh.refresh(here.refresh_token)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(there.refresh_token)
    with pytest.raises(Unauthenticated):
        await env.auth.sessions.login(EMAIL, PASSWORD)
    assert await env.auth.sessions.login(EMAIL, new)


@pytest.mark.parametrize(
    ("current", "new", "reason"),
    [
        ("wrong password here", "a completely new passphrase", "INVALID_CURRENT_PASSWORD"),
        (PASSWORD, PASSWORD, "PASSWORD_UNCHANGED"),
        (PASSWORD, "password1234", "PASSWORD_TOO_COMMON"),
        (PASSWORD, "short", "PASSWORD_TOO_SHORT"),
    ],
)
async def test_change_password_refusals(env: Env, current: str, new: str, reason: str) -> None:
    user_id = await _signed_up(env)
    with pytest.raises(InvalidArgument) as err:
        await env.auth.passwords.change_password(user_id, "", current, new, _recent(env))
    assert err.value.reason == reason


async def test_list_sessions_pages_newest_first(env: Env) -> None:
    user_id = await _signed_up(env)
    for _ in range(3):
        await env.auth.sessions.login(EMAIL, PASSWORD)
        env.clock.advance(1)
    page1, token = await env.auth.sessions.list_sessions(user_id, 2, "")
    page2, last = await env.auth.sessions.list_sessions(user_id, 2, token)
    assert len(page1) == 2 and len(page2) == 1 and last == ""
    created = [s.created_at for s in page1 + page2]
    assert created == sorted(created, reverse=True)
    with pytest.raises(InvalidArgument):
        await env.auth.sessions.list_sessions(
            "someone-else", 2, token
        )  # a token is bound to its query
