"""DESIGN §4 for the auth service: one outbox event per mutation and authentication decision,
refusals only for known accounts/PINs and rate-limited, and no secret in any event (SQLite,
fake clock; tests/integration/auth/test_auth_audit.py runs the RPCs on both databases)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jwt
import pytest
from auth_service.domain import Assurance
from auth_service.usecases import ChallengeIssued, TokenPair
from servicekit import AuditEvent, AuditOrigin, Outcome
from servicekit.errors import RailguardError
from servicekit.throttle import AuditThrottle
from testkit.totp import rfc6238, secret_from_uri

from .conftest import ORIGIN, PASSWORD, Env

EMAIL = "audit@example.com"
PIN = "73914062"
WRONG_PIN = "51862093"


def _claims(pair: TokenPair) -> dict[str, Any]:
    return jwt.decode(pair.access_token, options={"verify_signature": False})


def _assurance(pair: TokenPair) -> Assurance:
    c = _claims(pair)
    return Assurance(c["aal"], tuple(c["amr"]), c["auth_time"])


def _code(env: Env, secret: bytes, steps: int = 0) -> str:
    return rfc6238(secret, env.clock.now().timestamp() + 30 * steps)


async def _refused(call: Any) -> str:
    with pytest.raises(RailguardError) as err:
        await call
    return err.value.reason


async def _only(env: Env, action: str, outcome: Outcome = Outcome.SUCCESS) -> AuditEvent:
    events = [e for e in await env.audit(action) if e.outcome is outcome]
    assert len(events) == 1, [e.to_dict() for e in events]
    return events[0]


def _reasons(events: list[AuditEvent]) -> list[str]:
    return [e.metadata.get("reason", "") for e in events if e.outcome is Outcome.DENIED]


async def _user(env: Env, email: str = EMAIL) -> tuple[str, TokenPair]:
    user = await env.auth.accounts.sign_up(email, PASSWORD, "Audit")
    pair = await env.auth.sessions.login(email, PASSWORD)
    assert isinstance(pair, TokenPair)
    return user.id, pair


def _assert_from_call(event: AuditEvent, user_id: str) -> None:
    assert event.workspace_id == ""  # account-level: the audit log's own chain
    assert event.actor == f"user:{user_id}"
    assert (event.request_id, event.client_ip) == (ORIGIN.request_id, ORIGIN.client_ip)


# ---- sign-up, login, sessions ------------------------------------------------------------------


async def test_sign_up_and_login_record_one_event_each(env: Env) -> None:
    before = len(env.pokes)
    user_id, pair = await _user(env)
    signed_up = await _only(env, "user.signUp")
    _assert_from_call(signed_up, user_id)
    assert signed_up.target == f"users/{user_id}" and signed_up.metadata == {}
    login = await _only(env, "user.login")
    _assert_from_call(login, user_id)
    assert login.metadata == {
        "method": "password",
        "session_id": _claims(pair)["sid"],
        "aal": "aal1",
    }
    assert len(env.pokes) == before + 2  # the relay is woken after each audited commit


async def test_login_failures_are_recorded_alike_and_rate_limited(env: Env) -> None:
    user_id, _ = await _user(env)
    for i in range(3):
        await _refused(
            env.auth.sessions.login("nobody@example.com", "wrong password!", f"10.9.0.{i}")
        )
    # an unknown address costs the same one event as a known account, naming no one (issue 8)
    (anonymous,) = [e for e in await env.audit("user.login") if e.outcome is Outcome.DENIED]
    assert (anonymous.actor, anonymous.target) == ("anonymous", "users/-")
    assert anonymous.metadata == {"reason": "UNKNOWN_ACCOUNT"}
    assert "nobody" not in anonymous.to_json()
    env.clock.advance(61)

    for i in range(3):
        assert await _refused(env.auth.sessions.login(EMAIL, "wrong password!", f"10.0.0.{i}")) == (
            "INVALID_CREDENTIALS"
        )
    (denied,) = [
        e for e in await env.audit("user.login") if e.metadata.get("reason") == "INVALID_PASSWORD"
    ]
    _assert_from_call(denied, user_id)
    assert denied.metadata == {"reason": "INVALID_PASSWORD"}
    env.clock.advance(61)  # one event per account and reason per minute
    await _refused(env.auth.sessions.login(EMAIL, "wrong password!", "10.0.1.1"))
    assert _reasons(await env.audit("user.login")) == ["UNKNOWN_ACCOUNT"] + ["INVALID_PASSWORD"] * 2


async def test_throttled_logins_record_one_event_per_address_naming_known_accounts_only(
    env: Env,
) -> None:
    await _user(env)
    reasons = []
    for i in range(12):
        reasons.append(
            await _refused(env.auth.sessions.login(EMAIL, "wrong password!", f"10.0.2.{i}"))
        )
        reasons.append(
            await _refused(
                env.auth.sessions.login("ghost@example.com", "wrong pw!!", f"10.0.3.{i}")
            )
        )
    assert reasons.count("LOGIN_THROTTLED") >= 10
    events = await env.audit("user.login")
    assert sorted(_reasons(events)) == [
        "INVALID_PASSWORD",
        "LOGIN_THROTTLED",
        "LOGIN_THROTTLED",
        "UNKNOWN_ACCOUNT",
    ]
    assert all("ghost" not in e.to_json() for e in await env.audit())


async def test_refresh_token_reuse_records_the_family_revocation(env: Env) -> None:
    user_id, pair = await _user(env)
    assert await env.auth.refresh.refresh(pair.refresh_token)
    env.clock.advance(env.config.sessions.grace.total_seconds() + 1)
    assert await _refused(env.auth.refresh.refresh(pair.refresh_token)) == "INVALID_REFRESH_TOKEN"
    await _refused(
        env.auth.refresh.refresh(pair.refresh_token)
    )  # the session is gone: no new event
    reuse = await _only(env, "refreshToken.reuse", Outcome.DENIED)
    sid = _claims(pair)["sid"]
    assert (reuse.actor, reuse.target) == ("system", f"users/{user_id}/sessions/{sid}")
    assert reuse.metadata == {
        "session_id": sid,
        "user_id": user_id,
        "reason": "refresh_token_reuse",
        "family_revoked": "true",
    }
    assert reuse.request_id == ORIGIN.request_id


async def test_logout_revoke_and_change_password(env: Env) -> None:
    user_id, pair = await _user(env)
    other = await env.auth.sessions.login(EMAIL, PASSWORD)
    third = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(other, TokenPair) and isinstance(third, TokenPair)
    await env.auth.sessions.revoke_session(user_id, _claims(other)["sid"])
    revoked = await _only(env, "session.revoke")
    assert revoked.metadata == {"session_id": _claims(other)["sid"], "reason": "revoked_by_user"}
    _assert_from_call(revoked, user_id)

    sid = _claims(pair)["sid"]
    for _ in range(2):
        assert await _refused(
            env.auth.passwords.change_password(
                user_id, sid, "not my password", "brand new passphrase"
            )
        ) in ("INVALID_CURRENT_PASSWORD", "STEP_UP_REQUIRED")
    fresh = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(fresh, TokenPair)
    fresh_sid = _claims(fresh)["sid"]
    for _ in range(2):
        await _refused(
            env.auth.passwords.change_password(
                user_id, fresh_sid, "not my password", "brand new passphrase", _assurance(fresh)
            )
        )
    denied = await _only(env, "user.changePassword", Outcome.DENIED)
    assert denied.metadata == {"reason": "INVALID_CURRENT_PASSWORD"}
    await env.auth.passwords.change_password(
        user_id, fresh_sid, PASSWORD, "brand new passphrase", _assurance(fresh)
    )
    changed = await _only(env, "user.changePassword")
    assert changed.metadata == {"session_id": fresh_sid, "sessions_revoked": "2"}

    await env.auth.sessions.logout(user_id, fresh_sid)
    logout = await _only(env, "user.logout")
    assert logout.metadata == {"session_id": fresh_sid}
    assert logout.target == f"users/{user_id}/sessions/{fresh_sid}"


async def test_refused_mutations_record_nothing(env: Env) -> None:
    user_id, _ = await _user(env)
    before = await env.audit()
    # A taken address is no longer refused (issue 13: sign-up must not reveal who is
    # registered); it records a DENIED event for the owner, see test_auth_email_verification.
    await _refused(env.auth.accounts.sign_up("not-an-address", PASSWORD, ""))
    await _refused(env.auth.sessions.revoke_session(user_id, "missing"))
    await _refused(env.auth.sessions.logout(user_id, "missing"))
    await _refused(env.auth.pins.clear_deployment_pin("w1", "d1"))
    assert await env.audit() == before


# ---- MFA ---------------------------------------------------------------------------------------


async def _enrolled(env: Env) -> tuple[str, bytes, list[str], TokenPair, list[str]]:
    """A user with a confirmed factor, and the TOTP secret forms and codes used on the way."""
    user_id, pair = await _user(env)
    enrollment = await env.auth.mfa.begin_totp_enrollment(user_id, _assurance(pair))
    secret = secret_from_uri(enrollment.otpauth_uri)
    code = _code(env, secret)
    codes, aal2 = await env.auth.mfa.confirm_totp_enrollment(user_id, _claims(pair)["sid"], code)
    env.clock.advance(30)
    return user_id, secret, codes, aal2, [enrollment.secret, enrollment.otpauth_uri, code]


async def test_mfa_events(env: Env) -> None:
    user_id, secret, codes, aal2, _ = await _enrolled(env)
    enroll = await _only(env, "totp.enroll")
    confirm = await _only(env, "totp.confirm")
    assert enroll.metadata["factor_id"] == confirm.metadata["factor_id"]
    assert confirm.metadata["session_id"] == _claims(aal2)["sid"]
    assert confirm.metadata["sessions_revoked"] == "1"
    _assert_from_call(confirm, user_id)

    challenge = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(challenge, ChallengeIssued)
    first_step = [e for e in await env.audit("user.login") if "mfa_required" in e.metadata]
    assert len(first_step) == 1 and first_step[0].metadata["method"] == "password"
    # wrong codes: one DENIED event per user and reason per minute
    for _ in range(3):
        await _refused(
            env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "000000", "", "10.1.0.1")
        )
    denied = await _only(env, "user.verifyMfa", Outcome.DENIED)
    assert denied.metadata == {"reason": "INVALID_MFA_CODE", "method": "totp"}
    _assert_from_call(denied, user_id)
    done = await env.auth.mfa.verify_mfa_challenge(
        challenge.challenge_token, _code(env, secret), "", "10.1.0.1"
    )
    verified = await _only(env, "user.verifyMfa")
    assert verified.metadata["method"] == "totp" and verified.metadata["aal"] == "aal2"
    assert verified.metadata["session_id"] == _claims(done)["sid"]
    assert await env.audit("recoveryCode.use") == []

    challenge = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(challenge, ChallengeIssued)
    await env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "", codes[0], "10.1.0.1")
    used = await _only(env, "recoveryCode.use")
    assert used.metadata["remaining"] == str(len(codes) - 1)
    assert len([e for e in await env.audit("user.verifyMfa") if e.outcome is Outcome.SUCCESS]) == 2

    fresh = await _fresh_aal2(env, secret)
    await env.auth.recovery.regenerate_recovery_codes(user_id, _assurance(fresh))
    assert (await _only(env, "recoveryCodes.regenerate")).metadata == {"count": "10"}
    await env.auth.mfa.disable_totp(user_id, _assurance(fresh))
    disabled = await _only(env, "totp.disable")
    assert disabled.metadata == {"factor_id": enroll.metadata["factor_id"], "confirmed": "true"}


async def _fresh_aal2(env: Env, secret: bytes) -> TokenPair:
    env.clock.advance(30)
    challenge = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(challenge, ChallengeIssued)
    return await env.auth.mfa.verify_mfa_challenge(
        challenge.challenge_token, _code(env, secret), ""
    )


async def test_mfa_throttling_is_recorded_once(env: Env) -> None:
    await _enrolled(env)
    reasons = []
    for i in range(10):
        challenge = await env.auth.sessions.login(EMAIL, PASSWORD, f"10.2.0.{i}")
        assert isinstance(challenge, ChallengeIssued)
        reasons.append(
            await _refused(
                env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "", "AAAA-BBBB")
            )
        )
    assert "MFA_THROTTLED" in reasons
    assert sorted(_reasons(await env.audit("user.verifyMfa"))) == [
        "INVALID_MFA_CODE",
        "MFA_THROTTLED",
    ]


async def test_unknown_challenges_record_nothing(env: Env) -> None:
    await _enrolled(env)
    before = await env.audit()
    await _refused(env.auth.mfa.verify_mfa_challenge("x" * 43, "123456", ""))
    assert await env.audit() == before


# ---- deployment PINs ---------------------------------------------------------------------------


async def test_pin_events_use_the_deployment_workspace(env: Env) -> None:
    env.origin[0] = AuditOrigin("user:admin1", "req-pin", "198.51.100.4")
    await env.auth.pins.set_deployment_pin("w1", "d1", PIN)
    pin_set = await _only(env, "deploymentPin.set")
    assert (pin_set.workspace_id, pin_set.actor, pin_set.target) == (
        "w1",
        "user:admin1",
        "workspaces/w1/deployments/d1/pin",
    )
    assert pin_set.metadata == {"deployment_id": "d1", "replaced": "false"}

    env.origin[0] = ORIGIN  # an anonymous caller through the edge
    for _ in range(3):
        assert await _refused(env.auth.pins.verify_deployment_pin("w1", "d1", WRONG_PIN)) == (
            "INVALID_PIN"
        )
    await _refused(env.auth.pins.verify_deployment_pin("w1", "d1", "12"))  # malformed: same reason
    # unknown deployments are the caller's choice: never an event (nor a workspace chain)
    for _ in range(3):
        await _refused(env.auth.pins.verify_deployment_pin("w9", "d9", WRONG_PIN))
    denied = await _only(env, "deploymentPin.verify", Outcome.DENIED)
    assert (denied.workspace_id, denied.actor) == ("w1", "system")
    assert denied.metadata == {"reason": "INVALID_PIN", "deployment_id": "d1"}
    assert denied.client_ip == ORIGIN.client_ip

    await _refused(env.auth.pins.verify_deployment_pin("w1", "d1", WRONG_PIN))  # fifth failure
    reasons = [
        await _refused(env.auth.pins.verify_deployment_pin("w1", "d1", PIN)) for _ in range(3)
    ]
    assert reasons == ["PIN_THROTTLED"] * 3  # backing off now
    assert _reasons(await env.audit("deploymentPin.verify")) == ["INVALID_PIN", "PIN_THROTTLED"]
    assert {e.workspace_id for e in await env.audit() if e.action.startswith("deployment")} == {
        "w1"
    }

    env.clock.advance(3600)
    assert await env.auth.pins.verify_deployment_pin("w1", "d1", PIN)  # successes write nothing
    await env.auth.pins.clear_deployment_pin("w1", "d1")
    cleared = await _only(env, "deploymentPin.clear")
    assert (cleared.workspace_id, cleared.actor) == ("w1", "system")
    assert len(await env.audit("deploymentPin.verify")) == 2


# ---- no secrets --------------------------------------------------------------------------------


def _appears(value: str, text: str) -> bool:
    """``value`` in ``text`` not as part of a longer alphanumeric run (6-digit codes would
    otherwise match random hex ids by chance)."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", text) is not None


async def test_no_secret_enters_any_event(env: Env) -> None:
    user_id, secret, codes, aal2, totp_secrets = await _enrolled(env)
    secrets_used = [PASSWORD, "wrong password!", *totp_secrets, aal2.access_token]
    secrets_used += [aal2.refresh_token, secret.hex(), *codes, *(c.replace("-", "") for c in codes)]
    await _refused(env.auth.sessions.login(EMAIL, "wrong password!"))
    challenge = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(challenge, ChallengeIssued)
    secrets_used.append(challenge.challenge_token)
    await _refused(env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "", "ZZZZ-ZZZZ"))
    secrets_used.append("ZZZZ-ZZZZ")
    code = _code(env, secret)
    done = await env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, code, "")
    secrets_used += [code, done.access_token, done.refresh_token]
    rotated = await env.auth.refresh.refresh(done.refresh_token)
    secrets_used += [rotated.access_token, rotated.refresh_token]
    env.clock.advance(60)
    await _refused(env.auth.refresh.refresh(done.refresh_token))
    env.clock.advance(30)
    challenge = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(challenge, ChallengeIssued)
    recovered = await env.auth.mfa.verify_mfa_challenge(challenge.challenge_token, "", codes[1])
    secrets_used += [challenge.challenge_token, recovered.access_token, recovered.refresh_token]
    new_codes = await env.auth.recovery.regenerate_recovery_codes(user_id, _assurance(recovered))
    secrets_used += new_codes
    await env.auth.passwords.change_password(
        user_id,
        _claims(recovered)["sid"],
        PASSWORD,
        "another fine passphrase",
        _assurance(recovered),
    )
    secrets_used.append("another fine passphrase")
    await env.auth.pins.set_deployment_pin("w1", "d1", PIN)
    await _refused(env.auth.pins.verify_deployment_pin("w1", "d1", WRONG_PIN))
    token = await env.auth.pins.verify_deployment_pin("w1", "d1", PIN)
    secrets_used += [PIN, WRONG_PIN, token.access_token]

    events = await env.audit()
    actions = {e.action for e in events}
    assert {"user.login", "user.verifyMfa", "refreshToken.reuse", "recoveryCode.use"} <= actions
    assert {"recoveryCodes.regenerate", "user.changePassword", "deploymentPin.verify"} <= actions
    dump = "\n".join(e.to_json() for e in events)
    for value in secrets_used:
        assert not _appears(value, dump), "a secret entered an audit event"
    assert "eyJ" not in dump  # no JWT of any kind


def test_refusal_throttle_is_per_subject_and_reason_and_bounded() -> None:
    limiter = AuditThrottle(window=dt.timedelta(minutes=1), max_entries=3)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert limiter.allow("u1", "A", t0)
    assert not limiter.allow("u1", "A", t0 + dt.timedelta(seconds=59))
    assert limiter.allow("u1", "B", t0)
    assert limiter.allow("u2", "A", t0)
    assert limiter.allow("u1", "A", t0 + dt.timedelta(seconds=60))
    # full: stale entries are dropped, then everything, never growing beyond the bound
    for i in range(10):
        assert limiter.allow(f"x{i}", "A", t0 + dt.timedelta(seconds=61))
    assert len(limiter._last) <= 3  # noqa: SLF001 - the bound is the point of the test
