"""Stable reasons and constructors for every error the key-management library raises.

Messages are fixed English sentences: they never carry plaintext, key material, tokens or text
echoed back by Vault, so an error can be logged or returned without review.
"""

from __future__ import annotations

from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RailguardError,
    Unavailable,
)

__all__ = [
    "KMS_BATCH_TOO_LARGE",
    "KMS_CIPHERTEXT_INVALID",
    "KMS_CONFIG_INVALID",
    "KMS_CONTEXT_INVALID",
    "KMS_CONTEXT_MISMATCH",
    "KMS_KEYRING_CORRUPT",
    "KMS_KEYRING_INSECURE",
    "KMS_KEY_NOT_DERIVED",
    "KMS_KEY_NOT_FOUND",
    "KMS_KEY_TYPE_UNSUPPORTED",
    "KMS_KEY_VERSION_INVALID",
    "KMS_KEY_VERSION_RETIRED",
    "KMS_MASTER_KEY_INVALID",
    "KMS_MASTER_KEY_MISMATCH",
    "KMS_PERMISSION_DENIED",
    "KMS_PLAINTEXT_TOO_LARGE",
    "KMS_REQUEST_REJECTED",
    "KMS_UNAVAILABLE",
]

KMS_UNAVAILABLE = "KMS_UNAVAILABLE"
KMS_PERMISSION_DENIED = "KMS_PERMISSION_DENIED"
KMS_CIPHERTEXT_INVALID = "KMS_CIPHERTEXT_INVALID"
KMS_CONTEXT_MISMATCH = "KMS_CONTEXT_MISMATCH"
KMS_CONTEXT_INVALID = "KMS_CONTEXT_INVALID"
KMS_KEY_VERSION_RETIRED = "KMS_KEY_VERSION_RETIRED"
KMS_KEY_VERSION_INVALID = "KMS_KEY_VERSION_INVALID"
KMS_KEY_NOT_FOUND = "KMS_KEY_NOT_FOUND"
KMS_KEY_NOT_DERIVED = "KMS_KEY_NOT_DERIVED"
KMS_KEY_TYPE_UNSUPPORTED = "KMS_KEY_TYPE_UNSUPPORTED"
KMS_PLAINTEXT_TOO_LARGE = "KMS_PLAINTEXT_TOO_LARGE"
KMS_BATCH_TOO_LARGE = "KMS_BATCH_TOO_LARGE"
KMS_MASTER_KEY_INVALID = "KMS_MASTER_KEY_INVALID"
KMS_MASTER_KEY_MISMATCH = "KMS_MASTER_KEY_MISMATCH"
KMS_KEYRING_CORRUPT = "KMS_KEYRING_CORRUPT"
KMS_KEYRING_INSECURE = "KMS_KEYRING_INSECURE"
KMS_REQUEST_REJECTED = "KMS_REQUEST_REJECTED"
KMS_CONFIG_INVALID = "KMS_CONFIG_INVALID"


def unavailable(detail: str = "the key manager is unavailable") -> Unavailable:
    return Unavailable(detail, reason=KMS_UNAVAILABLE)


def permission_denied(detail: str = "the key manager refused the request") -> PermissionDenied:
    return PermissionDenied(detail, reason=KMS_PERMISSION_DENIED)


def ciphertext_invalid(detail: str = "malformed ciphertext") -> InvalidArgument:
    return InvalidArgument.field("ciphertext", detail, reason=KMS_CIPHERTEXT_INVALID)


def context_mismatch() -> InvalidArgument:
    # AES-GCM cannot tell a wrong context from an altered ciphertext; both fail the same tag check.
    return InvalidArgument.field(
        "ciphertext",
        "does not authenticate under this context (wrong context or altered ciphertext)",
        reason=KMS_CONTEXT_MISMATCH,
    )


def context_invalid(detail: str) -> InvalidArgument:
    return InvalidArgument.field("context", detail, reason=KMS_CONTEXT_INVALID)


def version_retired() -> FailedPrecondition:
    return FailedPrecondition(
        "ciphertext key version is below the key's min_decryption_version",
        reason=KMS_KEY_VERSION_RETIRED,
    )


def version_invalid(detail: str) -> InvalidArgument:
    return InvalidArgument.field("version", detail, reason=KMS_KEY_VERSION_INVALID)


def key_not_found() -> NotFound:
    return NotFound("the transit key or its mount does not exist", reason=KMS_KEY_NOT_FOUND)


def key_not_derived() -> FailedPrecondition:
    return FailedPrecondition(
        "the key is not derived, so contexts would be ignored; refusing to use it",
        reason=KMS_KEY_NOT_DERIVED,
    )


def key_type_unsupported() -> FailedPrecondition:
    return FailedPrecondition("the key type is not aes256-gcm96", reason=KMS_KEY_TYPE_UNSUPPORTED)


def request_rejected() -> FailedPrecondition:
    return FailedPrecondition("Vault rejected the request", reason=KMS_REQUEST_REJECTED)


def config_invalid(detail: str) -> InvalidArgument:
    return InvalidArgument(f"invalid key manager settings: {detail}", reason=KMS_CONFIG_INVALID)


def in_batch(error: RailguardError, index: int) -> RailguardError:
    """Tag ``error`` with the failing item's position in a batch."""
    error.metadata["index"] = str(index)
    return error
