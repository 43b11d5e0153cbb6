"""Pure domain of API keys: format, keyed hashing, allowlists, scopes and the verify decision.

No gRPC, SQL or I/O; time and configuration come in as parameters. Errors are the shared
``servicekit.errors`` tree with stable reasons.
"""

from .api_key import (
    MAX_KEY_NAME_CHARS,
    MAX_ROTATION_GRACE,
    ApiKey,
    DenyReason,
    KeyState,
    SecretSlot,
    Verified,
    VerifyContext,
    authenticate,
    authorize,
    issue_key,
    validate_name,
    verify,
)
from .grant import AAL_LEVELS, Facet, Rights, aal_level, ensure_grant
from .key_format import (
    KEY_FORMAT_REASONS,
    KEY_LENGTH,
    KeyEnvironment,
    PresentedKey,
    generate_key,
    parse_key,
)
from .network import MAX_ALLOWED_CIDRS, IpAddress, IpAllowlist, IpNetwork, canonical_ip
from .origin import MAX_ALLOWED_ORIGINS, OriginAllowlist, normalise_origin
from .pepper import MIN_PEPPER_BYTES, KeyHash, PepperRing
from .rights import Role, ScopeGrant, ScopePolicy, ScopeRule
from .scopes import MAX_SCOPES, Scope, ScopeCatalogue, ScopeSet, ensure_within

__all__ = [
    "AAL_LEVELS",
    "KEY_FORMAT_REASONS",
    "KEY_LENGTH",
    "MAX_ALLOWED_CIDRS",
    "MAX_ALLOWED_ORIGINS",
    "MAX_KEY_NAME_CHARS",
    "MAX_ROTATION_GRACE",
    "MAX_SCOPES",
    "MIN_PEPPER_BYTES",
    "ApiKey",
    "DenyReason",
    "Facet",
    "IpAddress",
    "IpAllowlist",
    "IpNetwork",
    "KeyEnvironment",
    "KeyHash",
    "KeyState",
    "OriginAllowlist",
    "PepperRing",
    "PresentedKey",
    "Rights",
    "Role",
    "Scope",
    "ScopeCatalogue",
    "ScopeGrant",
    "ScopePolicy",
    "ScopeRule",
    "ScopeSet",
    "SecretSlot",
    "Verified",
    "VerifyContext",
    "authenticate",
    "aal_level",
    "authorize",
    "canonical_ip",
    "ensure_grant",
    "ensure_within",
    "generate_key",
    "issue_key",
    "normalise_origin",
    "parse_key",
    "validate_name",
    "verify",
]
