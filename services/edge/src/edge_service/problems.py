"""RFC 9457 problem+json: every error the edge answers, with a stable ``code`` and the request id."""

from __future__ import annotations

import json
from typing import Any

import grpc
from servicekit import errors
from servicekit.status import error_from_rpc
from starlette.responses import Response

__all__ = ["HTTP_STATUS", "problem_from_error", "problem_from_rpc", "problem_response"]

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    # the edge cancels a call only when its own client has gone, and then nobody reads the
    # answer: a CANCELLED it does read is a service shutting down mid-call, so retry elsewhere
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# seconds a client should wait after a 503 that named no delay of its own
UNAVAILABLE_RETRY_AFTER = 1

_ERROR_STATUS: list[tuple[type[errors.RailguardError], int]] = [
    (errors.InvalidArgument, 400),
    (errors.FailedPrecondition, 400),
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.Aborted, 409),
    (errors.ResourceExhausted, 429),
    (errors.Unavailable, 503),
]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    426: "Upgrade Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    request_id: str,
    *,
    violations: list[errors.FieldViolation] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://railguard.dev/problems/{code.lower().replace('_', '-')}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": request_id,
    }
    if violations:
        body["errors"] = [{"field": v.field, "detail": v.description} for v in violations]
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers=headers or {},
    )


def problem_from_error(error: errors.RailguardError, request_id: str) -> Response:
    status = next((code for cls, code in _ERROR_STATUS if isinstance(error, cls)), 500)
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(error.retry_after + 0.999)))
    elif isinstance(error, errors.Unavailable):
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)  # every 503 says when to retry
    violations = error.violations if isinstance(error, errors.InvalidArgument) else None
    return problem_response(
        status, error.reason, error.message, request_id, violations=violations, headers=headers
    )


def problem_from_rpc(err: grpc.aio.AioRpcError, request_id: str) -> Response:
    """Map a service's gRPC error; INTERNAL and unknown codes never show their details."""
    code = err.code()
    if code not in HTTP_STATUS:
        return problem_response(500, "INTERNAL", "internal error", request_id)
    domain = error_from_rpc(err)
    if isinstance(domain, errors.Unavailable):
        # a service that answered UNAVAILABLE itself (e.g. its key manager is down) keeps its reason
        reason = (
            "SERVICE_UNAVAILABLE" if domain.reason == "DEPENDENCY_UNAVAILABLE" else domain.reason
        )
        retry = domain.retry_after if domain.retry_after is not None else UNAVAILABLE_RETRY_AFTER
        return problem_response(
            HTTP_STATUS[code],
            reason,
            "a service is unavailable; retry later",
            request_id,
            headers={"Retry-After": str(max(1, int(retry + 0.999)))},
        )
    return problem_from_error(domain, request_id)
