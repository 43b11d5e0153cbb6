"""Domain errors ⇄ ``google.rpc.Status``: the single translation both directions use."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from servicekit import errors

__all__ = ["error_from_rpc", "status_of"]

_CODES: dict[type[errors.RailguardError], int] = {
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
    errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.Aborted: code_pb2.ABORTED,
    errors.ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
    errors.Unavailable: code_pb2.UNAVAILABLE,
}
_CLASSES = {code: cls for cls, code in _CODES.items()}
# A status travels in response trailers, which gRPC caps (8 KiB by default): past that the caller
# sees RESOURCE_EXHAUSTED instead of the error. Every error is bounded here, whatever raised it.
MAX_MESSAGE = 512
MAX_METADATA_ENTRIES = 8
MAX_METADATA_VALUE = 256
MAX_VIOLATIONS = 16
MAX_VIOLATION_TEXT = 128


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_of(error: errors.RailguardError) -> int:
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return int(code_pb2.INTERNAL)


def status_of(error: errors.RailguardError, domain: str) -> grpc.Status:
    """The gRPC status for a domain error, with ErrorInfo, BadRequest and RetryInfo details."""
    status = status_pb2.Status(code=_code_of(error), message=_bounded(error.message, MAX_MESSAGE))
    metadata = {
        key[:64]: _bounded(value, MAX_METADATA_VALUE)
        for key, value in sorted(error.metadata.items())[:MAX_METADATA_ENTRIES]
    }
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=metadata)
    status.details.add().Pack(info)
    if isinstance(error, errors.InvalidArgument) and error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_bounded(v.field, MAX_VIOLATION_TEXT),
                    description=_bounded(v.description, MAX_VIOLATION_TEXT),
                )
                for v in error.violations[:MAX_VIOLATIONS]
            ]
        )
        status.details.add().Pack(bad)
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(0, int(error.retry_after * 1000)))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    result: grpc.Status = rpc_status.to_status(status)
    return result


def error_from_rpc(err: grpc.aio.AioRpcError) -> errors.RailguardError:
    """Turn a failed call to another service back into the domain error it carried.

    The reason, field violations and retry delay survive the hop. A transport failure
    (unreachable, deadline, no ErrorInfo) becomes ``Unavailable`` so callers fail closed.
    """
    code = err.code()
    reason, metadata = "", {}
    violations: list[errors.FieldViolation] = []
    retry_after: float | None = None
    try:
        status = rpc_status.from_call(err)
    except ValueError:
        # details that contradict the call's code (e.g. trailers cut by a size limit): trust
        # neither, and fail closed as a failed dependency rather than crash the caller
        return errors.Unavailable("a dependency failed", reason="DEPENDENCY_FAILED")
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [
                errors.FieldViolation(v.field, v.description) for v in bad.field_violations
            ]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToMilliseconds() / 1000
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not reason:
        return errors.Unavailable("a dependency is unavailable", reason="DEPENDENCY_UNAVAILABLE")
    cls = _CLASSES.get(code.value[0])
    if cls is None:
        return errors.Unavailable("a dependency failed", reason="DEPENDENCY_FAILED")
    if cls is errors.InvalidArgument:
        return errors.InvalidArgument(
            err.details() or "invalid argument",
            reason=reason or None,
            violations=violations,
            metadata=metadata,
        )
    return cls(
        err.details() or reason, reason=reason or None, metadata=metadata, retry_after=retry_after
    )
