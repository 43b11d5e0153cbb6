"""MFA, step-up, throttling and deployment PINs through the use cases (SQLite, fake clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import jwt
import pytest
from auth_service.domain import Assurance
from auth_service.usecases import ChallengeIssued, TokenPair
from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    RailguardError,
    ResourceExhausted,
    Unauthenticated,
)
from sqlalchemy import text
from testkit.totp import rfc6238, secret_from_uri

from .conftest import PASSWORD, Env

EMAIL = "alice@example.com"


def _claims(pair: TokenPair) -> dict[str, Any]:
    return jwt.decode(pair.access_token, options={"verify_signature": False})


def _assurance(pair: TokenPair) -> Assurance:
    c = _claims(pair)
    return Assurance(c["aal"], tuple(c["amr"]), c["auth_time"])


def _code(env: Env, secret: bytes, steps: int = 0) -> str:
    return rfc6238(secret, env.clock.now().timestamp() + 30 * steps)


async def _user(env: Env, email: str = EMAIL) -> tuple[str, TokenPair]:
    user = await env.auth.accounts.sign_up(email, PASSWORD, "")
    pair = await env.auth.sessions.login(email, PASSWORD)
    assert isinstance(pair, TokenPair)
    return user.id, pair


async def _enrolled(env: Env) -> tuple[str, bytes, list[str], TokenPair]:
    """A user with a confirmed factor; the clock is moved to the next step afterwards."""
    user_id, pair = await _user(env)
    enrollment = await env.auth.mfa.begin_totp_enrollment(user_id, _assurance(pair))
    secret = secret_from_uri(enrollment.otpauth_uri)
    codes, aal2 = await env.auth.mfa.confirm_totp_enrollment(
        user_id, _claims(pair)["sid"], _code(env, secret)
    )
    env.clock.advance(30)
    return user_id, secret, codes, aal2


async def _challenge(env: Env, email: str = EMAIL) -> ChallengeIssued:
    result = await env.auth.sessions.login(email, PASSWORD)
    assert isinstance(result, ChallengeIssued)
    return result


async def _reason(call: Any) -> str:
    with pytest.raises(RailguardError) as err:
        await call
    return err.value.reason


# ---- enrollment -------------------------------------------------------------------------------


async def test_enrollment_confirms_with_a_code_and_upgrades_the_session(env: Env) -> None:
    user_id, pair = await _user(env)
    _, other = await _user(env, "alice2@example.com")  # another user is untouched
    second = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(second, TokenPair)
    enrollment = await env.auth.mfa.begin_totp_enrollment(user_id, _assurance(pair))
    assert enrollment.otpauth_uri.startswith("otpauth://totp/Railguard:alice@example.com?")
    assert "period=30" in enrollment.otpauth_uri and "digits=6" in enrollment.otpauth_uri
    assert len(enrollment.secret) == 32  # 160 bits of base32
    status = await env.auth.mfa.mfa_status(user_id)
    assert status.totp_pending and not status.totp_enabled  # unverified until a code
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD), TokenPair)  # no MFA yet

    secret = secret_from_uri(enrollment.otpauth_uri)
    with pytest.raises(InvalidArgument) as err:
        await env.auth.mfa.confirm_totp_enrollment(user_id, _claims(pair)["sid"], "000000")
    assert err.value.reason == "INVALID_MFA_CODE"
    codes, aal2 = await env.auth.mfa.confirm_totp_enrollment(
        user_id, _claims(pair)["sid"], _code(env, secret)
    )
    assert len(codes) == 10
    claims = _claims(aal2)
    assert (claims["aal"], claims["amr"]) == ("aal2", ["pwd", "otp"])
    assert claims["sid"] != _claims(pair)["sid"]
    # Every aal1 session of the user (the calling one included) is revoked; others are not.
    for old in (pair, second):
        with pytest.raises(Unauthenticated):
            await env.auth.refresh.refresh(old.refresh_token)
    assert await env.auth.refresh.refresh(other.refresh_token)
    refreshed = await env.auth.refresh.refresh(aal2.refresh_token)
    assert _claims(refreshed)["aal"] == "aal2"  # refresh keeps the session's assurance
    status = await env.auth.mfa.mfa_status(user_id)
    assert status.totp_enabled and status.recovery_codes_remaining == 10


async def test_the_secret_is_encrypted_at_rest_and_never_shown_again(env: Env) -> None:
    user_id, secret, _, _ = await _enrolled(env)
    async with env.sessions() as s:
        rows = (await s.execute(text("SELECT * FROM totp_factors"))).all()
        codes = (await s.execute(text("SELECT code_hash FROM recovery_codes"))).all()
    dump = repr(rows).encode()
    import base64

    for form in (secret, secret.hex().encode(), base64.b32encode(secret).rstrip(b"=")):
        assert form not in dump
    assert rows[0].sealed_secret.startswith("rgkek:v1:")  # the test sealer; KMS in production
    assert all(len(c.code_hash) == 64 for c in codes)
    status = await env.auth.mfa.mfa_status(user_id)
    assert not hasattr(status, "secret")


async def test_begin_needs_a_recent_login_and_refuses_a_second_factor(env: Env) -> None:
    user_id, pair = await _user(env)
    env.clock.advance(minutes=16)
    assert (
        await _reason(env.auth.mfa.begin_totp_enrollment(user_id, _assurance(pair)))
        == "STEP_UP_REQUIRED"
    )
    user_id2 = (await env.auth.accounts.sign_up("bob@example.com", PASSWORD, "")).id
    assert (
        await _reason(env.auth.mfa.begin_totp_enrollment(user_id2, Assurance()))
        == "STEP_UP_REQUIRED"
    )


async def test_adding_a_factor_when_one_exists_needs_aal2_then_is_refused(env: Env) -> None:
    user_id, _, _, aal2 = await _enrolled(env)
    stale_aal1 = Assurance("aal1", ("pwd",), int(env.clock.now().timestamp()))
    assert (
        await _reason(env.auth.mfa.begin_totp_enrollment(user_id, stale_aal1)) == "STEP_UP_REQUIRED"
    )
    assert (
        await _reason(env.auth.mfa.begin_totp_enrollment(user_id, _assurance(aal2)))
        == "MFA_ALREADY_ENABLED"
    )


async def test_concurrent_confirmations_with_one_code_let_one_through(env: Env) -> None:
    user_id, pair = await _user(env)
    enrollment = await env.auth.mfa.begin_totp_enrollment(user_id, _assurance(pair))
    code = _code(env, secret_from_uri(enrollment.otpauth_uri))
    sid = _claims(pair)["sid"]
    results = await asyncio.gather(
        *(env.auth.mfa.confirm_totp_enrollment(user_id, sid, code) for _ in range(4)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1
    assert all(
        isinstance(r, (InvalidArgument, FailedPrecondition, Unauthenticated))
        for r in results
        if r not in ok
    )


# ---- login with a factor ----------------------------------------------------------------------


async def test_login_with_a_factor_returns_a_challenge_then_aal2_tokens(env: Env) -> None:
    _, secret, _, _ = await _enrolled(env)
    challenge = await _challenge(env)
    assert challenge.expires_in == 300
    assert challenge.methods == ("totp", "recovery_code")
    assert challenge.challenge_token.startswith("rgm_")
    pair = await env.auth.mfa.verify_mfa_challenge(
        challenge.challenge_token, _code(env, secret), ""
    )
    claims = _claims(pair)
    assert (claims["aal"], claims["amr"]) == ("aal2", ["pwd", "otp"])
    assert claims["auth_time"] == int(env.clock.now().timestamp())
    # single use
    assert (
        await _reason(
            env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, _code(env, secret, 1), "")
        )
        == "INVALID_MFA_CHALLENGE"
    )


async def test_the_enrollment_code_cannot_be_replayed_as_the_first_login_code(env: Env) -> None:
    user_id, pair = await _user(env)
    enrollment = await env.auth.mfa.begin_totp_enrollment(user_id, _assurance(pair))
    secret = secret_from_uri(enrollment.otpauth_uri)
    code = _code(env, secret)
    await env.auth.mfa.confirm_totp_enrollment(user_id, _claims(pair)["sid"], code)
    challenge = await _challenge(env)
    assert (
        await _reason(env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, code, ""))
        == "INVALID_MFA_CODE"
    )


async def test_a_code_works_once_and_older_steps_die_after_a_newer_one(env: Env) -> None:
    _, secret, _, _ = await _enrolled(env)
    current, previous = _code(env, secret), _code(env, secret, -1)
    first = await _challenge(env)
    await env.auth.mfa.verify_mfa_challenge(first.challenge_token, current, "")
    for replay in (current, previous):  # same code from another "client", and an older step
        again = await _challenge(env)
        assert (
            await _reason(env.auth.mfa.verify_mfa_challenge(again.challenge_token, replay, ""))
            == "INVALID_MFA_CODE"
        )


async def test_skew_window(env: Env) -> None:
    _, secret, _, _ = await _enrolled(env)
    env.clock.advance(120)
    for steps in (2, -2, 1):
        c = await _challenge(env)
        assert (
            await _reason(
                env.auth.mfa.verify_mfa_challenge(c.challenge_token, _code(env, secret, steps), "")
            )
            == "INVALID_MFA_CODE"
        )
    c = await _challenge(env)
    assert await env.auth.mfa.verify_mfa_challenge(c.challenge_token, _code(env, secret, -1), "")


async def test_concurrent_verifications_with_one_code_let_exactly_one_through(env: Env) -> None:
    _, secret, _, _ = await _enrolled(env)
    challenges = [await _challenge(env) for _ in range(4)]
    code = _code(env, secret)
    results = await asyncio.gather(
        *(env.auth.mfa.verify_mfa_challenge(c.challenge_token, code, "") for c in challenges),
        return_exceptions=True,
    )
    assert sum(isinstance(r, TokenPair) for r in results) == 1
    assert all(
        isinstance(r, Unauthenticated) and r.reason == "INVALID_MFA_CODE"
        for r in results
        if not isinstance(r, TokenPair)
    )


async def test_a_challenge_allows_five_attempts_and_expires(env: Env) -> None:
    _, secret, _, _ = await _enrolled(env)
    challenge = await _challenge(env)
    for _ in range(5):
        assert await _reason(
            env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "000000", "")
        ) in {"INVALID_MFA_CODE"}
    assert await _reason(
        env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, _code(env, secret), "")
    ) in {"INVALID_MFA_CHALLENGE", "MFA_THROTTLED"}
    env.clock.advance(hours=13)  # throttle forgets
    late = await _challenge(env)
    env.clock.advance(301)
    assert (
        await _reason(
            env.auth.mfa.verify_mfa_challenge(late.challenge_token, _code(env, secret), "")
        )
        == "INVALID_MFA_CHALLENGE"
    )
    for junk in ("", "rgm_short", "x" * 300):
        assert (
            await _reason(env.auth.mfa.verify_mfa_challenge(junk, "123456", ""))
            == "INVALID_MFA_CHALLENGE"
        )
    assert (
        await _reason(
            env.auth.mfa.verify_mfa_challenge(late.challenge_token, "123456", "aaaa-bbbb-cccc")
        )
        == "INVALID_MFA_REQUEST"
    )


async def test_wrong_codes_across_challenges_are_throttled_per_user(env: Env) -> None:
    _, secret, _, _ = await _enrolled(env)
    reasons = []
    for _ in range(7):
        c = await _challenge(env)
        reasons.append(
            await _reason(env.auth.mfa.verify_mfa_challenge(c.challenge_token, "000000", ""))
        )
    assert reasons[:5] == ["INVALID_MFA_CODE"] * 5
    assert reasons[5:] == ["MFA_THROTTLED"] * 2
    c = await _challenge(env)
    with pytest.raises(ResourceExhausted) as err:  # even the right code waits for the backoff
        await env.auth.mfa.verify_mfa_challenge(c.challenge_token, _code(env, secret), "")
    assert err.value.retry_after is not None and err.value.retry_after >= 1
    env.clock.advance(2)
    assert await env.auth.mfa.verify_mfa_challenge(c.challenge_token, _code(env, secret), "")


# ---- recovery codes ---------------------------------------------------------------------------


async def test_a_recovery_code_works_once(env: Env) -> None:
    user_id, _, codes, _ = await _enrolled(env)
    c = await _challenge(env)
    pair = await env.auth.mfa.verify_mfa_challenge(c.challenge_token, "", codes[0].upper())
    assert _claims(pair)["amr"] == ["pwd", "rec"] and _claims(pair)["aal"] == "aal2"
    c = await _challenge(env)
    assert (
        await _reason(env.auth.mfa.verify_mfa_challenge(c.challenge_token, "", codes[0]))
        == "INVALID_MFA_CODE"
    )
    assert (await env.auth.mfa.mfa_status(user_id)).recovery_codes_remaining == 9


async def test_concurrent_uses_of_one_recovery_code_let_one_through(env: Env) -> None:
    _, _, codes, _ = await _enrolled(env)
    challenges = [await _challenge(env) for _ in range(4)]
    results = await asyncio.gather(
        *(env.auth.mfa.verify_mfa_challenge(c.challenge_token, "", codes[3]) for c in challenges),
        return_exceptions=True,
    )
    assert sum(isinstance(r, TokenPair) for r in results) == 1


async def test_regenerating_voids_the_old_set_and_needs_step_up(env: Env) -> None:
    user_id, _, codes, aal2 = await _enrolled(env)
    fresh_aal1 = Assurance("aal1", ("pwd",), int(env.clock.now().timestamp()))
    assert (
        await _reason(env.auth.recovery.regenerate_recovery_codes(user_id, fresh_aal1))
        == "STEP_UP_REQUIRED"
    )
    new = await env.auth.recovery.regenerate_recovery_codes(user_id, _assurance(aal2))
    assert len(new) == 10 and not set(new) & set(codes)
    c = await _challenge(env)
    assert (
        await _reason(env.auth.mfa.verify_mfa_challenge(c.challenge_token, "", codes[1]))
        == "INVALID_MFA_CODE"
    )
    assert await env.auth.mfa.verify_mfa_challenge(c.challenge_token, "", new[1])
    env.clock.advance(minutes=16)
    assert (
        await _reason(env.auth.recovery.regenerate_recovery_codes(user_id, _assurance(aal2)))
        == "STEP_UP_REQUIRED"
    )


# ---- step-up: disable, password ---------------------------------------------------------------


async def test_disabling_needs_aal2_and_a_recent_login(env: Env) -> None:
    user_id, _, _, aal2 = await _enrolled(env)
    now = int(env.clock.now().timestamp())
    assert (
        await _reason(env.auth.mfa.disable_totp(user_id, Assurance("aal1", ("pwd",), now)))
        == "STEP_UP_REQUIRED"
    )
    assert (
        await _reason(
            env.auth.mfa.disable_totp(user_id, Assurance("aal2", ("pwd", "otp"), now - 901))
        )
        == "STEP_UP_REQUIRED"
    )
    await env.auth.mfa.disable_totp(user_id, _assurance(aal2))
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD), TokenPair)
    assert (await env.auth.mfa.mfa_status(user_id)).recovery_codes_remaining == 0
    assert await _reason(env.auth.mfa.disable_totp(user_id, _assurance(aal2))) == "MFA_NOT_ENABLED"


async def test_a_password_change_needs_step_up_and_never_bypasses_mfa(env: Env) -> None:
    user_id, secret, _, aal2 = await _enrolled(env)
    sid = _claims(aal2)["sid"]
    new = "a brand new passphrase"
    now = int(env.clock.now().timestamp())
    assert (
        await _reason(
            env.auth.passwords.change_password(
                user_id, sid, PASSWORD, new, Assurance("aal1", ("pwd",), now)
            )
        )
        == "STEP_UP_REQUIRED"
    )
    await env.auth.passwords.change_password(user_id, sid, PASSWORD, new, _assurance(aal2))
    result = await env.auth.sessions.login(EMAIL, new)
    assert isinstance(result, ChallengeIssued)  # still a second factor after the change
    env.clock.advance(minutes=16)
    assert (
        await _reason(
            env.auth.passwords.change_password(user_id, sid, new, PASSWORD + "!", _assurance(aal2))
        )
        == "STEP_UP_REQUIRED"
    )


# ---- login throttling -------------------------------------------------------------------------


async def test_login_backoff_after_five_failures_then_reset_on_success(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    for i in range(5):
        assert await _reason(env.auth.sessions.login(EMAIL, "wrong password!", f"10.0.0.{i}")) == (
            "INVALID_CREDENTIALS"
        )
    with pytest.raises(ResourceExhausted) as err:  # even the right password waits
        await env.auth.sessions.login(EMAIL, PASSWORD, "10.0.1.1")
    assert err.value.reason == "LOGIN_THROTTLED" and err.value.retry_after == 1.0
    env.clock.advance(1)
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD, "10.0.1.1"), TokenPair)
    for _ in range(5):  # the success reset the account counter
        assert await _reason(env.auth.sessions.login(EMAIL, "wrong password!", "10.0.2.1")) == (
            "INVALID_CREDENTIALS"
        )


async def test_a_throttled_unknown_account_looks_like_a_known_one(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    errors = []
    for email in (EMAIL, "nobody@example.com"):
        for i in range(5):
            await _reason(
                env.auth.sessions.login(email, "wrong password!", f"10.1.{len(errors)}.{i}")
            )
        with pytest.raises(ResourceExhausted) as err:
            await env.auth.sessions.login(email, "wrong password!", "10.9.9.9")
        errors.append(err.value)
    known, unknown = errors
    assert (known.reason, known.message, known.retry_after, known.metadata) == (
        unknown.reason,
        unknown.message,
        unknown.retry_after,
        unknown.metadata,
    )


async def test_parallel_wrong_passwords_cannot_exceed_the_limit(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    results = await asyncio.gather(
        *(env.auth.sessions.login(EMAIL, "wrong password!", f"10.2.0.{i}") for i in range(40)),
        return_exceptions=True,
    )
    reasons = [r.reason for r in results if isinstance(r, RailguardError)]
    assert len(reasons) == 40
    assert reasons.count("INVALID_CREDENTIALS") == 5
    assert reasons.count("LOGIN_THROTTLED") == 35


async def test_at_most_100_failures_per_hour_from_rotating_ips(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    guesses = 0
    start = env.clock.now()
    i = 0
    while env.clock.now() < start + dt.timedelta(hours=1):
        try:
            await env.auth.sessions.login(EMAIL, "wrong password!", f"10.3.{i // 250}.{i % 250}")
        except ResourceExhausted as exc:
            assert exc.retry_after is not None
            env.clock.advance(exc.retry_after)
        except Unauthenticated:
            guesses += 1
        i += 1
    assert guesses <= 100
    assert guesses >= 10  # backoff, not a lockout


async def test_per_ip_throttling(env: Env) -> None:
    for i in range(20):
        await _reason(
            env.auth.sessions.login(f"user{i}@example.com", "wrong password!", "192.0.2.7")
        )
    assert await _reason(env.auth.sessions.login("other@example.com", "x" * 12, "192.0.2.7")) == (
        "LOGIN_THROTTLED"
    )
    # another IP is unaffected, and the refused attempt did not count on the account
    assert await _reason(env.auth.sessions.login("other@example.com", "x" * 12, "192.0.2.8")) == (
        "INVALID_CREDENTIALS"
    )


async def test_a_success_does_not_reset_the_ip_counter(env: Env) -> None:
    await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    for i in range(19):
        await _reason(
            env.auth.sessions.login(f"user{i}@example.com", "wrong password!", "192.0.2.9")
        )
    assert isinstance(await env.auth.sessions.login(EMAIL, PASSWORD, "192.0.2.9"), TokenPair)
    await _reason(env.auth.sessions.login("user9@example.com", "wrong password!", "192.0.2.9"))
    assert await _reason(env.auth.sessions.login(EMAIL, PASSWORD, "192.0.2.9")) == "LOGIN_THROTTLED"


# ---- deployment PINs --------------------------------------------------------------------------


async def test_deployment_pin_lifecycle(env: Env) -> None:
    record = await env.auth.pins.set_deployment_pin("w1", "d1", "258046")
    assert record.pin_hash.startswith("fake$")  # the test hasher; argon2id in production
    token = await env.auth.pins.verify_deployment_pin("w1", "d1", "258046", "198.51.100.1")
    header = jwt.get_unverified_header(token.access_token)
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert header["typ"] == "dep+jwt" and header["alg"] == "EdDSA"
    assert claims["aud"] == "railguard-agent-ui" != env.config.audience
    assert (claims["ws"], claims["deployment"]) == ("w1", "d1")
    assert claims["exp"] - claims["iat"] == token.expires_in == 900
    assert "sid" not in claims
    await env.auth.pins.set_deployment_pin("w1", "d1", "739146")
    assert await _reason(env.auth.pins.verify_deployment_pin("w1", "d1", "258046")) == "INVALID_PIN"
    await env.auth.pins.clear_deployment_pin("w1", "d1")
    assert await _reason(env.auth.pins.verify_deployment_pin("w1", "d1", "739146")) == "INVALID_PIN"
    assert await _reason(env.auth.pins.get_deployment_pin("w1", "d1")) == "PIN_NOT_SET"
    assert await _reason(env.auth.pins.clear_deployment_pin("w1", "d1")) == "PIN_NOT_SET"


async def test_wrong_pin_and_unknown_deployment_answer_alike(env: Env) -> None:
    await env.auth.pins.set_deployment_pin("w1", "d1", "258046")
    errors = []
    for dep in ("d1", "nope"):
        with pytest.raises(Unauthenticated) as err:
            await env.auth.pins.verify_deployment_pin(
                "w1", dep, "111111", f"198.51.100.{len(errors)}"
            )
        errors.append((err.value.reason, err.value.message, err.value.metadata))
    assert errors[0] == errors[1]
    assert env.hasher.dummy_calls == 1


async def test_pin_guesses_from_one_client_cannot_lock_the_deployment_for_others(
    env: Env,
) -> None:
    """Issue 8: the deployment-wide backoff let anyone lock a deployment's PIN for everyone."""
    await env.auth.pins.set_deployment_pin("w1", "d1", "258046")
    results = await asyncio.gather(
        *(
            env.auth.pins.verify_deployment_pin("w1", "d1", "111111", "203.0.113.7")
            for _ in range(20)
        ),
        return_exceptions=True,
    )
    reasons = [r.reason for r in results if isinstance(r, RailguardError)]
    assert reasons.count("INVALID_PIN") == 5 and reasons.count("PIN_THROTTLED") == 15
    # the guesser waits, even with the right PIN ...
    assert await _reason(
        env.auth.pins.verify_deployment_pin("w1", "d1", "258046", "203.0.113.7")
    ) == ("PIN_THROTTLED")
    # ... and everyone else still gets in
    assert await env.auth.pins.verify_deployment_pin("w1", "d1", "258046", "203.0.113.8")
    # an admin setting a new PIN clears the deployment's counter
    await env.auth.pins.set_deployment_pin("w1", "d1", "482619")
    assert await env.auth.pins.verify_deployment_pin("w1", "d1", "482619", "203.0.113.99")
    # one IP against many deployments
    for i in range(10):
        await _reason(env.auth.pins.verify_deployment_pin("w1", f"x{i}", "111111", "203.0.113.200"))
    assert (
        await _reason(env.auth.pins.verify_deployment_pin("w1", "d1", "482619", "203.0.113.200"))
        == "PIN_THROTTLED"
    )


async def test_distributed_pin_guessing_hits_the_deployment_ceiling(env: Env) -> None:
    """Many clients, a few guesses each: the per-deployment ceiling still bounds the total."""
    await env.auth.pins.set_deployment_pin("w1", "d1", "258046")
    ceiling = env.config.throttle.pin_deployment.hourly_cap
    assert ceiling >= 100  # generous: shared offices and NATs are not locked out by a few typos
    for i in range(ceiling):
        ip = f"2001:db8::{i:x}"
        assert await _reason(env.auth.pins.verify_deployment_pin("w1", "d1", "111111", ip)) == (
            "INVALID_PIN"
        )
    fresh = "198.51.100.250"
    assert await _reason(env.auth.pins.verify_deployment_pin("w1", "d1", "258046", fresh)) == (
        "PIN_THROTTLED"
    )
    # other deployments are untouched
    await env.auth.pins.set_deployment_pin("w1", "d2", "482619")
    assert await env.auth.pins.verify_deployment_pin("w1", "d2", "482619", fresh)
