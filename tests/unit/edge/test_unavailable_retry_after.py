"""Every 503 from the edge says when to retry: the hop's RetryInfo, or one second."""

from __future__ import annotations

import grpc
from edge_service.problems import problem_from_error, problem_from_rpc
from servicekit import errors
from servicekit.status import status_of
from testkit.fakes import failed_call


def test_a_database_outage_two_hops_away_is_503_with_its_retry_after() -> None:
    down = errors.Unavailable("db", reason="DATABASE_UNAVAILABLE", retry_after=2.0)
    response = problem_from_rpc(failed_call(status_of(down, "auth.railguard.dev")), "rid")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert b'"code": "DATABASE_UNAVAILABLE"' in response.body


def test_an_unreachable_service_is_503_with_retry_after() -> None:
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "connect failed"
    )
    response = problem_from_rpc(err, "rid")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_a_call_a_draining_service_cancelled_is_a_retryable_503() -> None:
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata(), "shutting down"
    )
    response = problem_from_rpc(err, "rid")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert b'"code": "DEPENDENCY_FAILED"' in response.body


def test_a_local_unavailable_without_delay_still_says_when() -> None:
    response = problem_from_error(errors.Unavailable("kms", reason="KMS_UNAVAILABLE"), "rid")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
