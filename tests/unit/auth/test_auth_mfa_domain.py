"""Pure MFA rules: RFC 6238 vectors, the acceptance window, recovery codes, throttling, PINs."""

from __future__ import annotations

import base64
import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from auth_service.domain import (
    Assurance,
    ThrottlePolicy,
    admit,
    check_pin,
    fold_recovery_code,
    new_recovery_codes,
    step_up_problem,
)
from auth_service.domain import totp as domain_totp
from servicekit.errors import InvalidArgument
from testkit.totp import rfc6238, secret_from_uri

# RFC 6238 Appendix B, SHA1 column (8 digits, seed "12345678901234567890").
RFC6238_SECRET = b"12345678901234567890"
RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix_time", "expected"), RFC6238_SHA1)
def test_rfc6238_vectors_test_helper(unix_time: int, expected: str) -> None:
    assert rfc6238(RFC6238_SECRET, unix_time, digits=8) == expected


@pytest.mark.parametrize(("unix_time", "expected"), RFC6238_SHA1)
def test_rfc6238_vectors_server_domain(unix_time: int, expected: str) -> None:
    assert domain_totp.totp(RFC6238_SECRET, unix_time, digits=8) == expected
    step = domain_totp.time_step(unix_time)
    assert domain_totp.hotp(RFC6238_SECRET, step, digits=8) == expected


def test_helper_and_domain_agree_on_six_digit_codes() -> None:
    secret = domain_totp.new_secret()
    for t in range(0, 10**9, 7_777_777):
        assert domain_totp.totp(secret, t) == rfc6238(secret, t)


def test_secret_is_160_bits_and_the_uri_is_complete() -> None:
    secret = domain_totp.new_secret()
    assert len(secret) == 20
    b32 = domain_totp.base32_secret(secret)
    assert len(b32) == 32 and "=" not in b32
    assert base64.b32decode(b32) == secret
    uri = domain_totp.otpauth_uri(secret, "alice@example.com", "Railguard")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Railguard:alice@example.com"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "secret": b32,
        "issuer": "Railguard",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }
    assert secret_from_uri(uri) == secret


def test_the_window_is_previous_and_current_step_only() -> None:
    secret = domain_totp.new_secret()
    now = 1_767_268_800
    step = domain_totp.time_step(now)
    code = lambda offset: rfc6238(secret, now + 30 * offset)  # noqa: E731
    assert domain_totp.match_step(secret, code(0), step) == step
    assert domain_totp.match_step(secret, code(-1), step) == step - 1
    for offset in (1, 2, -2, -3):
        assert domain_totp.match_step(secret, code(offset), step) is None
    for junk in ("", "12345", "1234567", "abcdef", " 12345", "１２３４５６"):
        assert domain_totp.match_step(secret, junk, step) is None


def test_recovery_codes() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}", code)  # 12 x 5 = 60 bits
        assert fold_recovery_code(code.upper().replace("-", " ")) == code.replace("-", "")
    assert fold_recovery_code("not a code") is None
    assert fold_recovery_code("x" * 1000) is None
    assert new_recovery_codes() != codes


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _run(policy: ThrottlePolicy, attempts: list[float]) -> list[bool]:
    """Admit attempts at the given offsets (seconds); each admitted attempt fails."""
    state, out = None, []
    for offset in attempts:
        decision = admit(policy, state, T0 + dt.timedelta(seconds=offset))
        out.append(decision.allowed)
        if decision.allowed:
            state = decision.state
    return out


def test_backoff_starts_after_five_failures_and_doubles() -> None:
    policy = ThrottlePolicy()
    assert _run(policy, [0, 0, 0, 0, 0, 0]) == [True] * 5 + [False]
    assert _run(policy, [0, 0, 0, 0, 0, 1, 1.5, 3, 3, 7]) == [True] * 6 + [False, True, False, True]
    assert [policy.delay(n).total_seconds() for n in (4, 5, 6, 7, 15, 30)] == [
        0,
        1,
        2,
        4,
        900,
        900,
    ]


def test_refused_attempts_report_when_to_retry() -> None:
    policy = ThrottlePolicy()
    state = None
    for _ in range(5):
        state = admit(policy, state, T0).state
    refused = admit(policy, state, T0 + dt.timedelta(milliseconds=200))
    assert not refused.allowed and refused.retry_after == 1.0


def test_never_more_than_the_hourly_cap_even_without_backoff() -> None:
    policy = ThrottlePolicy(free_failures=10**6, hourly_cap=100)
    allowed = _run(policy, [i * 10 for i in range(360)])  # one attempt every 10 s for an hour
    assert sum(allowed) == 100
    decision_state = None
    for i in range(100):
        decision_state = admit(policy, decision_state, T0 + dt.timedelta(seconds=i)).state
    refused = admit(policy, decision_state, T0 + dt.timedelta(seconds=100))
    assert not refused.allowed and 3400 < refused.retry_after <= 3600


def test_no_permanent_lockout() -> None:
    policy = ThrottlePolicy()
    state = None
    for i in range(40):
        decision = admit(policy, state, T0 + dt.timedelta(hours=i))
        if decision.allowed:
            state = decision.state
    assert state is not None and state.failures > 5
    later = admit(policy, state, state.last_failure_at + policy.reset_after)  # type: ignore[operator]
    assert later.allowed and later.state.failures == 1


def test_step_up_rules() -> None:
    now = T0
    fresh = int(now.timestamp()) - 60
    stale = int(now.timestamp()) - 16 * 60
    window = dt.timedelta(minutes=15)
    assert step_up_problem(Assurance("aal1", ("pwd",), fresh), False, now, window) is None
    assert step_up_problem(Assurance("aal1", ("pwd",), fresh), True, now, window) == "aal2"
    assert step_up_problem(Assurance("aal2", ("pwd", "otp"), fresh), True, now, window) is None
    assert step_up_problem(Assurance("aal2", (), stale), True, now, window) == "recent_login"
    assert step_up_problem(Assurance("aal1", (), 0), False, now, window) == "recent_login"


@pytest.mark.parametrize("pin", ["258046", "7391462", "40298173"])
def test_good_pins(pin: str) -> None:
    assert check_pin(pin) == pin


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        ("123", "PIN_TOO_SHORT"),
        ("2580", "PIN_TOO_SHORT"),  # 4 and 5 digits were accepted before issue 8
        ("73914", "PIN_TOO_SHORT"),
        ("123456789", "INVALID_PIN_FORMAT"),
        ("12a4", "INVALID_PIN_FORMAT"),
        ("12a456", "INVALID_PIN_FORMAT"),
        ("١٢٣٤٥٦", "INVALID_PIN_FORMAT"),  # non-ASCII digits
        ("000000", "PIN_TOO_WEAK"),
        ("123456", "PIN_TOO_WEAK"),
        ("87654321", "PIN_TOO_WEAK"),
    ],
)
def test_bad_pins(pin: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_pin(pin)
    assert err.value.reason == reason
    assert pin not in err.value.message
    assert [v.field for v in err.value.violations] == ["pin"]
