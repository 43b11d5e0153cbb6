"""Domain errors survive a gRPC hop: reason, field violations and retry delay."""

from __future__ import annotations

import grpc
from grpc_status import rpc_status
from servicekit import errors
from servicekit.status import error_from_rpc, status_of
from testkit.fakes import failed_call


def _round_trip(error: errors.RailguardError) -> errors.RailguardError:
    return error_from_rpc(failed_call(status_of(error, "test.railguard.dev")))


def test_reason_violations_and_retry_survive() -> None:
    bad = _round_trip(
        errors.InvalidArgument.field("email", "must be an email address", reason="INVALID_EMAIL")
    )
    assert isinstance(bad, errors.InvalidArgument) and bad.reason == "INVALID_EMAIL"
    assert [(v.field, v.description) for v in bad.violations] == [
        ("email", "must be an email address")
    ]
    throttled = _round_trip(
        errors.ResourceExhausted("slow down", reason="LOGIN_THROTTLED", retry_after=7.5)
    )
    assert isinstance(throttled, errors.ResourceExhausted) and throttled.retry_after == 7.5


def test_a_service_answering_unavailable_keeps_its_reason() -> None:
    down = _round_trip(errors.Unavailable("kms down", reason="KMS_UNAVAILABLE"))
    assert isinstance(down, errors.Unavailable) and down.reason == "KMS_UNAVAILABLE"


def test_transport_failure_is_unavailable() -> None:
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "connect failed"
    )
    mapped = error_from_rpc(err)
    assert isinstance(mapped, errors.Unavailable) and mapped.reason == "DEPENDENCY_UNAVAILABLE"
    assert rpc_status.from_call(err) is None


def test_every_error_fits_in_the_trailers() -> None:
    """However much an error says, its status stays far below gRPC's 8 KiB trailer limit (past
    it the caller saw RESOURCE_EXHAUSTED with details that contradicted it, and the edge a 500)."""
    huge = errors.FailedPrecondition(
        "you are the last Owner of "
        + ", ".join(f"Workspace {i} (workspaces/{i:032x})" for i in range(500)),
        reason="LAST_OWNER",
        metadata={f"key{i}": "v" * 5000 for i in range(100)},
    )
    status = status_of(huge, "test.railguard.dev")
    size = sum(len(k) + len(v) for k, v in status.trailing_metadata)
    assert size < 6144
    assert len(status.details) <= 512
    bad = errors.InvalidArgument(
        "bad", violations=[errors.FieldViolation(f"f{i}", "x" * 1000) for i in range(1000)]
    )
    assert sum(len(k) + len(v) for k, v in status_of(bad, "d").trailing_metadata) < 7168
    back = _round_trip(huge)
    assert isinstance(back, errors.FailedPrecondition) and back.reason == "LAST_OWNER"


def test_details_that_contradict_the_code_fail_closed() -> None:
    status = status_of(errors.FailedPrecondition("no", reason="LAST_OWNER"), "d")
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        "trailers cut",
    )
    mapped = error_from_rpc(err)
    assert isinstance(mapped, errors.Unavailable) and mapped.reason == "DEPENDENCY_FAILED"
