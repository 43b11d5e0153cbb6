"""The second login step, replay refusal, recovery codes and step-up, on the in-memory fakes."""

from __future__ import annotations

import asyncio

import pytest
from auth_service.domain import Assurance
from servicekit.audit import Outcome
from servicekit.errors import InvalidArgument, Unauthenticated

from .conftest import Env
from .helpers import assurance, challenge, claims, code, enrolled, reason, user


def _denied(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.metadata["reason"] for e in events if e.outcome is Outcome.DENIED]


async def test_a_totp_code_completes_the_challenge_with_aal2(env: Env) -> None:
    user_id, secret, _, _ = await enrolled(env)
    issued = await challenge(env)
    pair = await env.auth.mfa.verify_mfa_challenge(issued.challenge_token, code(env, secret), "")
    c = claims(pair)
    assert (c["sub"], c["aal"], c["amr"]) == (user_id, "aal2", ["pwd", "otp"])
    [event] = [e for e in await env.audit("user.verifyMfa") if e.outcome is Outcome.SUCCESS]
    assert event.metadata["method"] == "totp" and event.metadata["session_id"] == c["sid"]
    # single use: the challenge is spent
    again = env.auth.mfa.verify_mfa_challenge(issued.challenge_token, code(env, secret, 1), "")
    assert await reason(again) == "INVALID_MFA_CHALLENGE"


async def test_a_replayed_code_is_refused_and_the_challenge_survives(env: Env) -> None:
    _, secret, _, _ = await enrolled(env)
    used = code(env, secret)
    first = await challenge(env)
    await env.auth.mfa.verify_mfa_challenge(first.challenge_token, used, "")
    second = await challenge(env)
    with pytest.raises(Unauthenticated) as err:
        await env.auth.mfa.verify_mfa_challenge(second.challenge_token, used, "")
    assert err.value.reason == "INVALID_MFA_CODE"
    assert _denied(await env.audit("user.verifyMfa")) == ["INVALID_MFA_CODE"]
    sessions_before = len(env.store.tables.sessions)
    # nothing of the refused attempt committed: the challenge still works with a fresh code
    env.clock.advance(30)
    pair = await env.auth.mfa.verify_mfa_challenge(second.challenge_token, code(env, secret), "")
    assert claims(pair)["aal"] == "aal2"
    assert len(env.store.tables.sessions) == sessions_before + 1


async def test_two_concurrent_uses_of_one_code_make_one_session(env: Env) -> None:
    _, secret, _, _ = await enrolled(env)
    first, second = await challenge(env), await challenge(env)
    sessions_before = len(env.store.tables.sessions)
    results = await asyncio.gather(
        *(
            env.auth.mfa.verify_mfa_challenge(c.challenge_token, code(env, secret), "")
            for c in (first, second)
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Unauthenticated)]
    assert len(refused) == 1 and refused[0].reason == "INVALID_MFA_CODE"
    assert len(env.store.tables.sessions) == sessions_before + 1
    # the loser was refused by the atomic write, and its challenge was not spent
    assert _denied(await env.audit("user.verifyMfa")) == ["TOTP_REPLAY"]
    assert sum(c.consumed_at is None for c in env.store.tables.challenges.values()) == 1


async def test_wrong_codes_use_up_the_challenge(env: Env) -> None:
    _, secret, _, _ = await enrolled(env)
    issued = await challenge(env)
    for _ in range(env.config.mfa_challenge_attempts):
        with pytest.raises(Unauthenticated) as err:
            await env.auth.mfa.verify_mfa_challenge(issued.challenge_token, "000000", "")
        assert err.value.reason == "INVALID_MFA_CODE"
    right = env.auth.mfa.verify_mfa_challenge(issued.challenge_token, code(env, secret), "")
    assert await reason(right) == "INVALID_MFA_CHALLENGE"
    # refusals are audited, at most one per user and reason per minute
    assert _denied(await env.audit("user.verifyMfa")) == ["INVALID_MFA_CODE"]


async def test_exactly_one_kind_of_code_and_a_well_formed_challenge(env: Env) -> None:
    _, secret, codes, _ = await enrolled(env)
    issued = await challenge(env)
    for totp, recovery in (("", ""), (code(env, secret), codes[0])):
        with pytest.raises(InvalidArgument) as err:
            await env.auth.mfa.verify_mfa_challenge(issued.challenge_token, totp, recovery)
        assert err.value.reason == "INVALID_MFA_REQUEST"
    junk = env.auth.mfa.verify_mfa_challenge("junk", code(env, secret), "")
    assert await reason(junk) == "INVALID_MFA_CHALLENGE"


async def test_a_recovery_code_works_once_and_is_counted(env: Env) -> None:
    user_id, _, codes, _ = await enrolled(env)
    issued = await challenge(env)
    pair = await env.auth.mfa.verify_mfa_challenge(issued.challenge_token, "", codes[0])
    assert (claims(pair)["aal"], claims(pair)["amr"]) == ("aal2", ["pwd", "rec"])
    [used] = await env.audit("recoveryCode.use")
    assert used.metadata == {"session_id": claims(pair)["sid"], "remaining": "9"}
    assert codes[0] not in repr(await env.audit())
    again = await challenge(env)
    replay = env.auth.mfa.verify_mfa_challenge(again.challenge_token, "", codes[0])
    assert await reason(replay) == "INVALID_MFA_CODE"
    assert (await env.auth.mfa.mfa_status(user_id)).recovery_codes_remaining == 9


async def test_regenerated_codes_replace_the_old_set(env: Env) -> None:
    user_id, _, old, aal2 = await enrolled(env)
    new = await env.auth.recovery.regenerate_recovery_codes(user_id, assurance(aal2))
    assert len(new) == 10 and not set(new) & set(old)
    issued = await challenge(env)
    refused = env.auth.mfa.verify_mfa_challenge(issued.challenge_token, "", old[0])
    assert await reason(refused) == "INVALID_MFA_CODE"
    await env.auth.mfa.verify_mfa_challenge(issued.challenge_token, "", new[0])
    stored = {r.code_hash for r in env.store.tables.recovery.values()}
    assert not {c.replace("-", "") for c in new} & stored  # only peppered hashes are kept


async def test_factor_changes_need_step_up(env: Env) -> None:
    user_id, pair = await user(env)
    env.clock.advance(minutes=16)
    stale = env.auth.mfa.begin_totp_enrollment(user_id, assurance(pair))
    assert await reason(stale) == "STEP_UP_REQUIRED"
    uid, _, _, aal2 = await enrolled(env, "bob@example.com")
    aal1 = Assurance("aal1", ("pwd",), int(env.clock.now().timestamp()))
    assert await reason(env.auth.mfa.disable_totp(uid, aal1)) == "STEP_UP_REQUIRED"
    regen = env.auth.recovery.regenerate_recovery_codes(uid, aal1)
    assert await reason(regen) == "STEP_UP_REQUIRED"
    await env.auth.mfa.disable_totp(uid, assurance(aal2))
    assert not (await env.auth.mfa.mfa_status(uid)).totp_enabled
    assert [m.template for m in await env.mails("bob@example.com")][-1] == "factor-removed"
