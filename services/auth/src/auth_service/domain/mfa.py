"""MFA state: TOTP factors, login challenges, step-up (privileged action) rules, deployment PINs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from auth_service.domain.bearer_token import BearerTokenFormat

CHALLENGE_PREFIX = "rgm_"

AAL1, AAL2 = "aal1", "aal2"
METHOD_TOTP, METHOD_RECOVERY = "totp", "recovery_code"
AMR_PASSWORD, AMR_OTP, AMR_RECOVERY = "pwd", "otp", "rec"


@dataclass(slots=True)
class TotpFactor:
    id: str
    user_id: str
    sealed_secret: str = field(repr=False)
    created_at: dt.datetime
    confirmed_at: dt.datetime | None = None
    # The last accepted time step; a code is accepted only for a strictly newer step.
    last_step: int = 0

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


def totp_context(user_id: str, factor_id: str) -> str:
    """The key-manager context a factor's secret is sealed under (binds it to its record)."""
    return f"user/{user_id}/totp/{factor_id}"


@dataclass(slots=True)
class MfaChallenge:
    """The second step of a login: a bearer token, valid 5 minutes, for at most 5 attempts."""

    id: str
    user_id: str
    token_hash: str = field(repr=False)
    created_at: dt.datetime
    expires_at: dt.datetime
    attempts: int = 0
    consumed_at: dt.datetime | None = None
    client_ip: str = ""

    def usable(self, now: dt.datetime, max_attempts: int) -> bool:
        return self.consumed_at is None and now < self.expires_at and self.attempts < max_attempts


_CHALLENGE = BearerTokenFormat(CHALLENGE_PREFIX)

new_challenge_token = _CHALLENGE.new
challenge_well_formed = _CHALLENGE.well_formed
challenge_hash = _CHALLENGE.hash


@dataclass(frozen=True, slots=True)
class Assurance:
    """What the caller's token says about how it authenticated (from the principal)."""

    aal: str = AAL1
    amr: tuple[str, ...] = ()
    auth_time: int = 0  # Unix seconds of the last password or MFA login


def step_up_problem(
    assurance: Assurance, has_factor: bool, now: dt.datetime, max_age: dt.timedelta
) -> str | None:
    """Why a privileged action must be refused, or None when the caller may proceed.

    A user with a factor must be at aal2; everyone must have logged in within ``max_age``.
    """
    if has_factor and assurance.aal != AAL2:
        return "aal2"
    age = now.timestamp() - assurance.auth_time
    if assurance.auth_time <= 0 or age > max_age.total_seconds() or age < -60:
        return "recent_login"
    return None


@dataclass(slots=True)
class DeploymentPin:
    workspace_id: str
    deployment_id: str
    pin_hash: str = field(repr=False)
    created_at: dt.datetime
    updated_at: dt.datetime
