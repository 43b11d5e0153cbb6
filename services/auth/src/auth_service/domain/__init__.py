"""The auth domain: pure rules about passwords, users, sessions, refresh tokens and signing keys."""

from auth_service.domain.password import (
    MAX_LENGTH,
    MIN_LENGTH,
    Blocklist,
    check_password,
    fold,
    normalize_password,
)
from auth_service.domain.refresh_token import (
    RefreshRecord,
    Replay,
    classify_replay,
    new_refresh_token,
    token_hash,
    well_formed,
)
from auth_service.domain.session import Session, SessionPolicy
from auth_service.domain.signing_key import (
    KeyState,
    RotationPlan,
    RotationPolicy,
    SigningKey,
    plan_rotation,
    thumbprint_kid,
)
from auth_service.domain.user import User, lookup_email, validate_display_name, validate_email

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "Blocklist",
    "KeyState",
    "RefreshRecord",
    "Replay",
    "RotationPlan",
    "RotationPolicy",
    "Session",
    "SessionPolicy",
    "SigningKey",
    "User",
    "check_password",
    "classify_replay",
    "fold",
    "lookup_email",
    "new_refresh_token",
    "normalize_password",
    "plan_rotation",
    "thumbprint_kid",
    "token_hash",
    "validate_display_name",
    "validate_email",
    "well_formed",
]
