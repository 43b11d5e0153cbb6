"""Domain errors shared by every service; pure Python, mapped to gRPC status in one interceptor.

Each error carries a stable UPPER_SNAKE ``reason`` (the public contract, surfaced as
``google.rpc.ErrorInfo.reason`` over gRPC and as ``code`` in problem+json at the edge), a short
English message that never contains a secret, and string metadata.

    RailguardError
    ├── InvalidArgument        bad input (carries field violations)        -> INVALID_ARGUMENT / 400
    ├── Unauthenticated        caller unknown or credentials invalid       -> UNAUTHENTICATED / 401
    ├── PermissionDenied       caller known, action not allowed            -> PERMISSION_DENIED / 403
    ├── NotFound               missing, or not visible to the caller       -> NOT_FOUND / 404
    ├── AlreadyExists          a unique resource exists already            -> ALREADY_EXISTS / 409
    ├── FailedPrecondition     state must change first                     -> FAILED_PRECONDITION / 400
    ├── Aborted                concurrency conflict; retry                 -> ABORTED / 409
    ├── ResourceExhausted      throttled or over a limit                   -> RESOURCE_EXHAUSTED / 429
    └── Unavailable            a dependency is down; fail closed, retry    -> UNAVAILABLE / 503
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "Aborted",
    "AlreadyExists",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RailguardError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad input field: its path (``user.email``) and why it was refused."""

    field: str
    description: str


class RailguardError(Exception):
    """Base of every domain error; subclasses fix the status category."""

    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class InvalidArgument(RailguardError):
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: list[FieldViolation] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations: list[FieldViolation] = list(violations or [])

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        """One-field shorthand: ``InvalidArgument.field("email", "must be an email address")``."""
        return cls(
            f"{field}: {description}",
            reason=reason,
            violations=[FieldViolation(field, description)],
        )


class Unauthenticated(RailguardError):
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(RailguardError):
    default_reason = "PERMISSION_DENIED"


class NotFound(RailguardError):
    default_reason = "NOT_FOUND"


class AlreadyExists(RailguardError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(RailguardError):
    default_reason = "FAILED_PRECONDITION"


class Aborted(RailguardError):
    default_reason = "ABORTED"


class ResourceExhausted(RailguardError):
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(RailguardError):
    default_reason = "UNAVAILABLE"
