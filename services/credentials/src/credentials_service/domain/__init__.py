"""The credentials domain: pure rules about credentials and webhook triggers (no gRPC, no SQL)."""

from credentials_service.domain.credential import (
    HIDDEN,
    MAX_VALUE_BYTES,
    PROVIDERS,
    Credential,
    Provider,
    SecretValue,
    check_value,
    credential_context,
    mask,
    parse_provider,
    validate_display_name,
)
from credentials_service.domain.soft_delete import SoftDeletable
from credentials_service.domain.webhook import (
    MIN_PEPPER_BYTES,
    TOKEN_PREFIX,
    Delivery,
    TokenHasher,
    WebhookTrigger,
    new_token,
    trigger_not_found,
    trigger_purged,
    webhook_context,
)

__all__ = [
    "HIDDEN",
    "MAX_VALUE_BYTES",
    "MIN_PEPPER_BYTES",
    "PROVIDERS",
    "TOKEN_PREFIX",
    "Credential",
    "Delivery",
    "Provider",
    "SecretValue",
    "SoftDeletable",
    "TokenHasher",
    "WebhookTrigger",
    "check_value",
    "credential_context",
    "mask",
    "new_token",
    "parse_provider",
    "trigger_not_found",
    "trigger_purged",
    "validate_display_name",
    "webhook_context",
]
