"""The auth use cases' settings and the values they answer with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from auth_service.domain import RotationPolicy, SessionPolicy, ThrottlePolicy
from auth_service.domain.signup_policy import SignupPolicy


@dataclass(frozen=True, slots=True)
class ThrottlePolicies:
    """Attempt limits per key kind (DESIGN §4: backoff after 5 failures, ≤100/h per account).

    Per-IP counters allow more free failures than per-account ones: an IP is often shared (NAT,
    office proxies), and guessing against one account is already bounded by its own counter.
    """

    login_account: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    login_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(20, 300))
    mfa_user: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    mfa_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(20, 300))
    # PINs: backoff per deployment × client IP, so that one guesser cannot lock a deployment out
    # for everyone; a generous per-deployment ceiling (no backoff) bounds distributed guessing.
    pin_deployment_ip: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(hourly_cap=30))
    pin_deployment: ThrottlePolicy = field(
        default_factory=lambda: ThrottlePolicy(free_failures=300, hourly_cap=300)
    )
    pin_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(10, 50))
    # Mail-sending requests count every call (nothing is "settled"): a few per address an hour.
    mail_address: ThrottlePolicy = field(default_factory=lambda: _ip_policy(3, 5))
    mail_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(10, 30))
    # Presenting a mailed token: failures per IP (a success gives its attempt back).
    token_ip: ThrottlePolicy = field(default_factory=lambda: _ip_policy(10, 50))


def _ip_policy(free_failures: int, hourly_cap: int) -> ThrottlePolicy:
    return ThrottlePolicy(free_failures=free_failures, hourly_cap=hourly_cap)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    issuer: str = "https://railguard.local"
    audience: str = "railguard"
    access_token_ttl: dt.timedelta = dt.timedelta(minutes=10)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    rotation: RotationPolicy = field(default_factory=RotationPolicy)
    throttle: ThrottlePolicies = field(default_factory=ThrottlePolicies)
    mfa_challenge_ttl: dt.timedelta = dt.timedelta(minutes=5)
    mfa_challenge_attempts: int = 5
    step_up_max_age: dt.timedelta = dt.timedelta(minutes=15)
    totp_issuer: str = "Railguard"
    deployment_token_ttl: dt.timedelta = dt.timedelta(minutes=15)
    deployment_audience: str = "railguard-agent-ui"
    public_url: str = "https://127.0.0.1:8443"
    reset_token_ttl: dt.timedelta = dt.timedelta(minutes=30)
    verify_token_ttl: dt.timedelta = dt.timedelta(hours=24)
    # How long a deleted account's personal data is kept before it is erased (a tombstone stays).
    account_retention: dt.timedelta = dt.timedelta(days=30)
    signup: SignupPolicy = field(default_factory=SignupPolicy)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class ChallengeIssued:
    """A login that needs a second factor: complete it with ``verify_mfa_challenge``."""

    challenge_token: str = field(repr=False)
    expires_in: int
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    otpauth_uri: str = field(repr=False)
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class MfaState:
    totp_enabled: bool
    totp_pending: bool
    totp_enabled_at: dt.datetime | None
    recovery_codes_remaining: int


@dataclass(frozen=True, slots=True)
class DeploymentToken:
    access_token: str = field(repr=False)
    expires_in: int
