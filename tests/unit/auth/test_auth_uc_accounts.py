"""Accounts and passwords on the in-memory fakes: sign-up, mailed tokens, deletion, change and
reset of the password."""

from __future__ import annotations

import re

import pytest
from auth_service.usecases import TokenPair
from servicekit.audit import Outcome
from servicekit.errors import FailedPrecondition, InvalidArgument

from .conftest import PASSWORD, Env
from .helpers import EMAIL, assurance, claims, reason, user

NEW = "a brand new passphrase here"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


def _token(body: str) -> str:
    match = _TOKEN.search(body)
    assert match is not None
    return match.group(1)


async def test_sign_up_mails_a_link_and_a_taken_address_learns_nothing(env: Env) -> None:
    created = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "Alice")
    [mail] = await env.mails(EMAIL)
    assert mail.template == "verify-email"
    stand_in = await env.auth.accounts.sign_up(EMAIL, "another good passphrase", "Eve")
    assert stand_in.id != created.id and stand_in.password_hash == ""
    assert len(env.store.tables.users) == 1
    assert [m.template for m in await env.mails(EMAIL)] == ["verify-email", "account-exists"]
    events = await env.audit("user.signUp")
    assert [(e.outcome, e.metadata.get("reason")) for e in events] == [
        (Outcome.SUCCESS, None),
        (Outcome.DENIED, "EMAIL_TAKEN"),
    ]


async def test_the_verification_link_works_once(env: Env) -> None:
    created = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    token = _token((await env.mails(EMAIL))[0].body)
    stored = [t.token_hash for t in env.store.tables.tokens.values()]
    assert token not in stored  # only a keyed hash is kept
    await env.auth.accounts.verify_email(token)
    assert (await env.auth.accounts.current_user(created.id)).email_verified
    assert await reason(env.auth.accounts.verify_email(token)) == "INVALID_TOKEN"
    assert await reason(env.auth.accounts.verify_email("junk")) == "INVALID_TOKEN"


async def test_look_ups_take_exactly_one_key_and_hide_deleted_accounts(env: Env) -> None:
    created = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    assert (await env.auth.accounts.lookup_user(EMAIL.upper(), "")).id == created.id
    assert await reason(env.auth.accounts.lookup_user(EMAIL, created.id)) == "INVALID_LOOKUP"
    await env.auth.accounts.delete_user(created.id)
    assert await reason(env.auth.accounts.lookup_user("", created.id)) == "USER_NOT_FOUND"


async def test_the_last_owner_cannot_delete_the_account(env: Env) -> None:
    user_id, pair = await user(env)
    env.memberships.rows = [(user_id, "acme", "owner")]
    with pytest.raises(FailedPrecondition) as err:
        await env.auth.accounts.delete_account(user_id, assurance(pair))
    assert err.value.reason == "LAST_OWNER"
    assert "Acme (workspaces/acme)" in str(err.value)
    env.memberships.rows = [(user_id, "acme", "member")]
    await env.auth.accounts.delete_account(user_id, assurance(pair))
    assert await reason(env.auth.refresh.refresh(pair.refresh_token)) == "INVALID_REFRESH_TOKEN"
    assert (await env.mails(EMAIL))[-1].template == "account-deleted"
    env.clock.advance(days=31)
    assert await env.auth.accounts.purge_deleted_accounts() == 1
    assert env.store.tables.users[user_id].email == f"{user_id}@deleted.invalid"


async def test_a_password_change_checks_the_current_one_and_keeps_the_caller(env: Env) -> None:
    user_id, pair = await user(env)
    other = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(other, TokenPair)
    sid, step_up = claims(pair)["sid"], assurance(pair)
    with pytest.raises(InvalidArgument) as err:
        await env.auth.passwords.change_password(user_id, sid, "wrong password!", NEW, step_up)
    assert err.value.reason == "INVALID_CURRENT_PASSWORD"
    same = env.auth.passwords.change_password(user_id, sid, PASSWORD, PASSWORD, step_up)
    assert await reason(same) == "PASSWORD_UNCHANGED"
    await env.auth.passwords.change_password(user_id, sid, PASSWORD, NEW, step_up)
    assert await env.auth.refresh.refresh(pair.refresh_token)  # the caller's session stays
    ended = env.auth.refresh.refresh(other.refresh_token)
    assert await reason(ended) == "INVALID_REFRESH_TOKEN"
    assert await reason(env.auth.sessions.login(EMAIL, PASSWORD)) == "INVALID_CREDENTIALS"


async def test_a_reset_token_works_once_and_ends_every_session(env: Env) -> None:
    _, pair = await user(env)
    await env.auth.passwords.request_password_reset("ghost@example.com")  # no mail, no error
    await env.auth.passwords.request_password_reset(EMAIL)
    reset = [m for m in await env.mails() if m.template == "password-reset"]
    assert [m.to for m in reset] == [EMAIL]
    token = _token(reset[0].body)
    await env.auth.passwords.reset_password(token, NEW)
    assert await reason(env.auth.passwords.reset_password(token, NEW)) == "INVALID_TOKEN"
    assert await reason(env.auth.refresh.refresh(pair.refresh_token)) == "INVALID_REFRESH_TOKEN"
    assert await env.auth.sessions.login(EMAIL, NEW)
    assert (await env.mails(EMAIL))[-1].template == "password-was-reset"
    assert token not in repr(await env.audit())


async def test_reset_requests_are_limited_per_address(env: Env) -> None:
    for i in range(3):
        await env.auth.passwords.request_password_reset("ghost@example.com", f"10.0.0.{i}")
    limited = env.auth.passwords.request_password_reset("ghost@example.com", "10.0.1.1")
    assert await reason(limited) == "RESET_THROTTLED"
