"""Password reset: same answer for every address, a single-use keyed-hash token, sessions end."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from auth_service.adapters.tables import AccountTokenRow
from auth_service.usecases import ChallengeIssued, TokenPair
from servicekit.errors import InvalidArgument, RailguardError, ResourceExhausted, Unauthenticated
from sqlalchemy import select

from .conftest import PASSWORD, Env
from .test_auth_mfa_usecases import _enrolled

EMAIL = "alice@example.com"
NEW = "a brand new passphrase here"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


async def _reason(call: Any) -> str:
    with pytest.raises(RailguardError) as err:
        await call
    return err.value.reason


async def _reset_token(env: Env, email: str = EMAIL) -> str:
    await env.auth.passwords.request_password_reset(email, "198.51.100.7")
    mails = [m for m in await env.mails(email) if m.template == "password-reset"]
    match = _TOKEN.search(mails[-1].body)
    assert match is not None
    return match.group(1)


async def test_a_reset_mail_carries_a_256_bit_token_stored_only_as_a_keyed_hash(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    token = await _reset_token(env)
    mail = (await env.mails(EMAIL))[-1]
    assert mail.subject == "Reset your Railguard password"
    assert "https://127.0.0.1:8443/reset-password?token=" in mail.body
    assert "30 minutes" in mail.body
    async with env.sessions() as session:
        query = select(AccountTokenRow).where(AccountTokenRow.purpose == "password_reset")
        stored = (await session.execute(query)).scalars().all()
    assert len(stored) == 1 and token not in stored[0].token_hash
    assert len(stored[0].token_hash) == 64  # HMAC-SHA256, not the token
    # neither the token nor the address enters the audit event
    (event,) = await env.audit("user.requestPasswordReset")
    assert token not in event.to_json() and EMAIL not in event.to_json()


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    assert await env.auth.passwords.request_password_reset("nobody@example.com") is None
    assert await env.auth.passwords.request_password_reset(EMAIL) is None
    resets = [m.to for m in await env.mails() if m.template == "password-reset"]
    assert resets == [EMAIL]
    assert await env.audit("user.requestPasswordReset")  # only for the real account


async def test_requests_are_limited_per_address_known_or_not(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    for address in (EMAIL, "nobody@example.com"):
        for i in range(3):
            await env.auth.passwords.request_password_reset(address, f"192.0.2.{i}")
        reasons = {await _reason(env.auth.passwords.request_password_reset(address, "192.0.2.99"))}
        assert reasons == {"RESET_THROTTLED"}


async def test_requests_are_limited_per_ip(env: Env) -> None:
    for i in range(10):
        await env.auth.passwords.request_password_reset(f"n{i}@example.com", "192.0.2.1")
    with pytest.raises(ResourceExhausted):
        await env.auth.passwords.request_password_reset("n99@example.com", "192.0.2.1")


async def test_reset_sets_the_password_ends_every_session_and_mails_a_notice(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    pair = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(pair, TokenPair)
    token = await _reset_token(env)
    await env.auth.passwords.reset_password(token, NEW)
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(pair.refresh_token)  # the refresh family ended
    with pytest.raises(Unauthenticated):
        await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(await env.auth.sessions.login(EMAIL, NEW), TokenPair)
    notice = (await env.mails(EMAIL))[-1]
    assert notice.template == "password-was-reset" and token not in notice.body
    (event,) = await env.audit("user.resetPassword")
    assert event.metadata["sessions_revoked"] == "1" and token not in event.to_json()


async def test_the_new_password_is_under_the_same_policy(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    token = await _reset_token(env)
    for bad, reason in (("short", "PASSWORD_TOO_SHORT"), (EMAIL, "PASSWORD_CONTAINS_EMAIL")):
        with pytest.raises(InvalidArgument) as err:
            await env.auth.passwords.reset_password(token, bad)
        assert err.value.reason == reason
    await env.auth.passwords.reset_password(
        token, NEW
    )  # a refused password did not spend the token


async def test_used_expired_superseded_and_foreign_tokens_get_one_answer(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    used = await _reset_token(env)
    await env.auth.passwords.reset_password(used, NEW)
    superseded = await _reset_token(env)
    live = await _reset_token(env)  # supersedes the one before
    expired_source = live
    answers: list[tuple[str, str]] = []
    for token in (used, superseded, "x" * 43, "not-a-token", "A" * 43):
        with pytest.raises(InvalidArgument) as err:
            await env.auth.passwords.reset_password(token, "another fine passphrase")
        answers.append((err.value.reason, str(err.value)))
    env.clock.advance(minutes=31)
    with pytest.raises(InvalidArgument) as err:
        await env.auth.passwords.reset_password(expired_source, "another fine passphrase")
    answers.append((err.value.reason, str(err.value)))
    assert len(set(answers)) == 1 and answers[0][0] == "INVALID_TOKEN"


async def test_two_concurrent_uses_of_one_token_exactly_one_wins(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    token = await _reset_token(env)
    results = await asyncio.gather(
        env.auth.passwords.reset_password(token, "first fine passphrase"),
        env.auth.passwords.reset_password(token, "second fine passphrase"),
        return_exceptions=True,
    )
    wins = [r for r in results if r is None]
    losses = [r for r in results if isinstance(r, InvalidArgument)]
    assert len(wins) == 1 and len(losses) == 1 and losses[0].reason == "INVALID_TOKEN"


async def test_mfa_still_applies_after_a_reset(env: Env) -> None:
    await _enrolled(env)
    challenge = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(challenge, ChallengeIssued)
    token = await _reset_token(env)
    await env.auth.passwords.reset_password(token, NEW)
    result = await env.auth.sessions.login(EMAIL, NEW)
    assert isinstance(result, ChallengeIssued)
    # a challenge opened with the old password no longer completes
    with pytest.raises(Unauthenticated):
        await env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "000000", "")


async def test_failed_token_presentations_are_limited_per_ip(env: Env) -> None:
    for _ in range(10):
        with pytest.raises(InvalidArgument):
            await env.auth.passwords.reset_password("B" * 43, NEW, "192.0.2.50")
    with pytest.raises(ResourceExhausted):
        await env.auth.passwords.reset_password("B" * 43, NEW, "192.0.2.50")
