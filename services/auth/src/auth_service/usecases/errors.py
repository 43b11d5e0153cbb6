"""The domain errors the auth use cases raise: one builder per stable ``reason``.

One message per reason whatever the cause (unknown account or wrong password alike), so an
answer never tells an attacker more than the reason says.
"""

from __future__ import annotations

import datetime as dt

from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

from auth_service.domain import AAL2


def throttled(reason: str, retry_after: float) -> ResourceExhausted:
    # One message for every throttled key, known account or not.
    return ResourceExhausted(
        "too many attempts; retry later", reason=reason, retry_after=retry_after
    )


def invalid_mfa_code() -> Unauthenticated:
    return Unauthenticated("the code is invalid or was already used", reason="INVALID_MFA_CODE")


def invalid_challenge() -> Unauthenticated:
    return Unauthenticated(
        "the MFA challenge is invalid, expired or used up", reason="INVALID_MFA_CHALLENGE"
    )


def invalid_pin() -> Unauthenticated:
    return Unauthenticated("the deployment or PIN is incorrect", reason="INVALID_PIN")


def pin_not_set() -> NotFound:
    return NotFound("the deployment has no PIN", reason="PIN_NOT_SET")


def mfa_not_enabled() -> FailedPrecondition:
    return FailedPrecondition("TOTP is not enabled", reason="MFA_NOT_ENABLED")


def no_session() -> FailedPrecondition:
    return FailedPrecondition("the call carries no session", reason="NO_SESSION")


def step_up_required(problem: str, max_age: dt.timedelta) -> PermissionDenied:
    minutes = int(max_age.total_seconds() // 60)
    message = (
        "this action needs a session verified with your second factor (aal2)"
        if problem == "aal2"
        else f"this action needs a login within the last {minutes} minutes; log in again"
    )
    return PermissionDenied(
        message,
        reason="STEP_UP_REQUIRED",
        metadata={
            "required_aal": AAL2 if problem == "aal2" else "",
            "max_age_seconds": str(int(max_age.total_seconds())),
        },
    )


def invalid_credentials() -> Unauthenticated:
    # One error for unknown email, wrong password and deleted (later: locked) accounts.
    return Unauthenticated(
        "the email address or password is incorrect", reason="INVALID_CREDENTIALS"
    )


def invalid_refresh() -> Unauthenticated:
    return Unauthenticated(
        "the refresh token is invalid or expired", reason="INVALID_REFRESH_TOKEN"
    )


def session_not_found() -> NotFound:
    return NotFound("session not found", reason="SESSION_NOT_FOUND")


def user_not_found() -> NotFound:
    return NotFound("user not found", reason="USER_NOT_FOUND")


def invalid_page_token() -> InvalidArgument:
    return InvalidArgument.field(
        "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
    )


def invalid_token() -> InvalidArgument:
    # One answer for unknown, foreign, used, superseded and expired tokens alike.
    return InvalidArgument.field(
        "token", "is invalid, expired or already used", reason="INVALID_TOKEN"
    )
