"""problem+json (RFC 9457) answers as typed exceptions carrying the edge's stable ``code``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "FieldViolation",
    "MfaRequired",
    "NotFound",
    "PermissionDenied",
    "RailguardError",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "Unauthenticated",
    "error_from_parts",
    "error_from_response",
]


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field: its JSON name and what is wrong with it."""

    field: str
    detail: str


class RailguardError(Exception):
    """An error answered by the edge; ``code`` is stable (e.g. ``ROLE_TOO_LOW``)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        request_id: str = "",
        title: str = "",
        type: str = "",  # noqa: A002 - the RFC 9457 member name
        violations: tuple[FieldViolation, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.status, self.code, self.detail = status, code, detail
        self.request_id, self.title, self.type = request_id, title, type
        self.violations, self.retry_after = violations, retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, request_id={self.request_id!r})"


class BadRequest(RailguardError):
    """400: the request is invalid; ``violations`` names the fields."""


class Unauthenticated(RailguardError):
    """401: no, an expired or an invalid credential."""


class PermissionDenied(RailguardError):
    """403: authenticated, but not allowed (role, scope, MFA, IP, origin)."""


class NotFound(RailguardError):
    """404: missing, or not visible to the caller."""


class Conflict(RailguardError):
    """409: already exists, or changed concurrently."""


class RateLimited(RailguardError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds."""


class ServiceUnavailable(RailguardError):
    """503: a service behind the edge is down or not ready."""


class ServerError(RailguardError):
    """Any other 5xx."""


class ConnectionFailed(RailguardError):
    """The edge could not be reached (DNS, TCP, TLS, timeout); ``status`` is 0."""

    def __init__(self, detail: str) -> None:
        super().__init__(0, "CONNECTION_FAILED", detail)


class MfaRequired(RailguardError):
    """Login needs a second factor: pass ``challenge_token`` to ``verify_mfa`` with a code."""

    def __init__(self, challenge_token: str, methods: tuple[str, ...], expires_in: int) -> None:
        super().__init__(401, "MFA_REQUIRED", "a second factor is required")
        self.challenge_token, self.methods, self.expires_in = challenge_token, methods, expires_in


_BY_STATUS: dict[int, type[RailguardError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(response: httpx.Response) -> RailguardError:
    """The typed exception for an error response (problem+json, or anything else the path sent)."""
    return error_from_parts(response.status_code, response.content, response.headers)


def error_from_parts(status: int, content: bytes, headers: Mapping[str, str]) -> RailguardError:
    """The typed exception from a status, a body and headers (lower-case names looked up)."""
    body: Any = None
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    headers = {k.lower(): v for k, v in headers.items()}
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else RailguardError)
    violations = tuple(
        FieldViolation(str(v.get("field", "")), str(v.get("detail", "")))
        for v in body.get("errors") or []
        if isinstance(v, dict)
    )
    return cls(
        status,
        str(body.get("code") or f"HTTP_{status}"),
        str(body.get("detail") or ""),
        request_id=str(body.get("request_id") or headers.get("x-request-id", "")),
        title=str(body.get("title") or ""),
        type=str(body.get("type") or ""),
        violations=violations,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
