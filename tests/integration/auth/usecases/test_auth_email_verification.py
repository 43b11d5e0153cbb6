"""Email verification at sign-up and on email change; sign-up reveals nothing about who exists."""

from __future__ import annotations

import re

import jwt
import pytest
from auth_service.domain import Assurance
from auth_service.usecases import TokenPair
from servicekit.audit import Outcome
from servicekit.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated

from .conftest import PASSWORD, Env

EMAIL = "alice@example.com"
NEW_EMAIL = "alice@new.example.org"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


def _token(body: str) -> str:
    match = _TOKEN.search(body)
    assert match is not None
    return match.group(1)


async def _mail(env: Env, to: str, template: str) -> str:
    found = [m for m in await env.mails(to) if m.template == template]
    assert found, f"no {template} mail to {to}"
    return found[-1].body


async def _claims(env: Env, email: str = EMAIL) -> dict[str, object]:
    pair = await env.auth.sessions.login(email, PASSWORD)
    assert isinstance(pair, TokenPair)
    return dict(jwt.decode(pair.access_token, options={"verify_signature": False}))


def _recent(env: Env) -> Assurance:
    return Assurance(auth_time=int(env.clock.now().timestamp()))


async def test_sign_up_mails_a_link_that_verifies_the_address_once(env: Env) -> None:
    user = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    assert not user.email_verified
    assert (await _claims(env))["email_verified"] is False  # an unverified account can log in
    token = _token(await _mail(env, EMAIL, "verify-email"))
    await env.auth.accounts.verify_email(token)
    assert (await env.auth.accounts.current_user(user.id)).email_verified
    assert (await _claims(env))["email_verified"] is True
    with pytest.raises(InvalidArgument) as err:
        await env.auth.accounts.verify_email(token)
    assert err.value.reason == "INVALID_TOKEN"
    (event,) = await env.audit("user.verifyEmail")
    assert token not in event.to_json() and EMAIL not in event.to_json()


async def test_a_taken_address_gets_the_same_answer_and_its_owner_a_mail(env: Env) -> None:
    first = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    second = await env.auth.accounts.sign_up(EMAIL, "some other passphrase", "Mallory")
    assert (second.email, second.email_verified) == (first.email, first.email_verified)
    body = await _mail(env, EMAIL, "account-exists")
    assert _TOKEN.search(body) is None  # a notice, no link that does anything
    assert len([m for m in await env.mails(EMAIL) if m.template == "verify-email"]) == 1
    denied = [e for e in await env.audit("user.signUp") if e.outcome is Outcome.DENIED]
    assert len(denied) == 1 and denied[0].target == f"users/{first.id}"
    assert EMAIL not in denied[0].to_json()
    with pytest.raises(Unauthenticated):
        await env.auth.sessions.login(EMAIL, "some other passphrase")  # nothing was changed


async def test_the_link_expires_and_a_resend_supersedes_it(env: Env) -> None:
    user = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    old = _token(await _mail(env, EMAIL, "verify-email"))
    await env.auth.accounts.send_verification_email(user.id)
    new = _token(await _mail(env, EMAIL, "verify-email"))
    with pytest.raises(InvalidArgument):
        await env.auth.accounts.verify_email(old)
    env.clock.advance(hours=25)
    with pytest.raises(InvalidArgument):
        await env.auth.accounts.verify_email(new)
    await env.auth.accounts.send_verification_email(user.id)
    await env.auth.accounts.verify_email(_token(await _mail(env, EMAIL, "verify-email")))
    with pytest.raises(FailedPrecondition):
        await env.auth.accounts.send_verification_email(user.id)


async def test_an_email_change_verifies_the_new_address_and_tells_the_old(env: Env) -> None:
    user = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    with pytest.raises(PermissionDenied):
        await env.auth.accounts.change_email(user.id, NEW_EMAIL, Assurance())  # no recent login
    await env.auth.accounts.change_email(user.id, NEW_EMAIL, _recent(env))
    assert (await env.auth.accounts.current_user(user.id)).email == EMAIL  # not before the link
    token = _token(await _mail(env, NEW_EMAIL, "confirm-email-change"))
    await env.auth.accounts.verify_email(token)
    moved = await env.auth.accounts.current_user(user.id)
    assert (moved.email, moved.email_verified) == (NEW_EMAIL, True)
    notice = await _mail(env, EMAIL, "email-changed")
    assert NEW_EMAIL not in notice and "a***@new.example.org" in notice
    assert (await _claims(env, NEW_EMAIL))["sub"] == user.id
    with pytest.raises(Unauthenticated):
        await env.auth.sessions.login(EMAIL, PASSWORD)
    (event,) = await env.audit("user.changeEmail")
    assert NEW_EMAIL not in event.to_json() and token not in event.to_json()


async def test_changing_to_a_taken_address_answers_the_same_and_changes_nothing(
    env: Env,
) -> None:
    alice = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    await env.auth.accounts.sign_up(NEW_EMAIL, PASSWORD, "")
    await env.auth.accounts.change_email(alice.id, NEW_EMAIL, _recent(env))
    assert await _mail(env, NEW_EMAIL, "account-exists")
    assert not [m for m in await env.mails(NEW_EMAIL) if m.template == "confirm-email-change"]
    assert (await env.auth.accounts.current_user(alice.id)).email == EMAIL


async def test_a_new_or_removed_second_factor_is_mailed(env: Env) -> None:
    from .test_auth_mfa_usecases import _enrolled

    _, _, _, aal2 = await _enrolled(env)
    (added,) = [m for m in await env.mails(EMAIL) if m.template == "factor-added"]
    assert "authenticator app" in added.body
    claims = jwt.decode(aal2.access_token, options={"verify_signature": False})
    user_id = str(claims["sub"])
    step_up = Assurance(aal="aal2", amr=("pwd", "otp"), auth_time=int(env.clock.now().timestamp()))
    await env.auth.mfa.disable_totp(user_id, step_up)
    assert [m for m in await env.mails(EMAIL) if m.template == "factor-removed"]


async def test_a_new_session_records_the_user_agent_and_never_a_secret_like_one(env: Env) -> None:
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0\x07",
        "curl eyJhbGciOiJFZERTQSJ9.e30.x",
    ]
    env.auth.context._user_agent = lambda: agents[0]  # noqa: SLF001 - what the edge would forward
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    await env.auth.sessions.login(EMAIL, PASSWORD)
    env.auth.context._user_agent = lambda: agents[1]  # noqa: SLF001
    await env.auth.sessions.login(EMAIL, PASSWORD)
    logins = await env.audit("user.login")
    assert [e.metadata["user_agent"] for e in logins] == [
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        "(withheld)",
    ]
