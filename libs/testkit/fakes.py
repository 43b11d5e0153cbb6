"""Small helpers the services' tests share instead of copying them per conftest.

- ``as_user`` / ``as_key``: the principal metadata the edge forwards, for calling a servicer.
- ``error_info`` / ``reason``: what a failed call carries (code, ``ErrorInfo`` reason, fields).
- ``failed_call``: a ``grpc.aio.AioRpcError`` built from a ``grpc.Status``, as a stub raises it.
- ``FakeUnitOfWork``: the shell of an in-memory unit of work for use-case tests against fakes.
- ``FixedAccess``: an access resolver that answers one view for everyone.

Nothing here imports a service: the helpers work on servicekit's types and gRPC's.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Generic, NamedTuple, Self, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from servicekit.context import Principal

from testkit.servers import principal_metadata

__all__ = [
    "FakeUnitOfWork",
    "FixedAccess",
    "Metadata",
    "RpcFailure",
    "as_key",
    "as_user",
    "error_info",
    "failed_call",
    "reason",
]

Metadata = tuple[tuple[str, bytes | str], ...]
V = TypeVar("V")


def as_user(user_id: str, workspace_id: str = "", role: int = 0, **principal: Any) -> Metadata:
    """The metadata the edge forwards for ``user_id`` acting in ``workspace_id`` with ``role``.

    Any other ``Principal`` field (``session_id``, ``client_ip``, ``aal`` …) goes by keyword.
    """
    return principal_metadata(
        Principal(user_id=user_id, workspace_id=workspace_id, role=role, **principal)
    )


def as_key(
    user_id: str,
    workspace_id: str,
    scopes: tuple[str, ...],
    api_key_id: str = "kx",
    **principal: Any,
) -> Metadata:
    """The metadata for an API key ``api_key_id`` of ``user_id`` with ``scopes``."""
    return as_user(user_id, workspace_id, api_key_id=api_key_id, scopes=scopes, **principal)


class RpcFailure(NamedTuple):
    """A failed call as a test reads it."""

    code: grpc.StatusCode
    reason: str  # the ErrorInfo reason, "" when the status carries none
    message: str  # the status details text
    fields: list[str]  # the BadRequest field-violation paths, in order


def error_info(err: grpc.aio.AioRpcError) -> RpcFailure:
    """The code, ``ErrorInfo`` reason, message and field-violation paths of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None, "the call carries no google.rpc.Status"
    found, fields = "", list[str]()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return RpcFailure(err.code(), found, err.details() or "", fields)


def reason(err: grpc.aio.AioRpcError) -> str:
    """The ``ErrorInfo`` reason of a failed call; fails the test when there is none."""
    found = error_info(err).reason
    assert found, "no ErrorInfo"
    return found


class _FailedCall(grpc.aio.AioRpcError):
    def __init__(self, status: grpc.Status) -> None:
        super().__init__(
            status.code,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(*status.trailing_metadata),
            status.details,
        )


def failed_call(status: grpc.Status) -> grpc.aio.AioRpcError:
    """The error a stub raises for a call that ended with ``status`` (trailers included)."""
    return _FailedCall(status)


class FakeUnitOfWork:
    """An in-memory unit of work: ``async with uow:`` … ``await uow.commit()``.

    Subclasses keep their changes apart from the published state: ``begin`` starts them (on
    entry), ``publish`` makes them visible (on commit). Leaving without a commit publishes nothing,
    as a rolled-back transaction would.
    """

    def __init__(self) -> None:
        self.commits = 0

    def begin(self) -> None:
        """Start a transaction's private changes (on ``async with``)."""

    def publish(self) -> None:
        """Make the changes visible (on ``commit``)."""

    async def __aenter__(self) -> Self:
        self.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        self.publish()
        self.commits += 1


class FixedAccess(Generic[V]):
    """An access resolver that answers the same view for every user and workspace."""

    def __init__(self, view: V) -> None:
        self.view = view
        self.calls: list[tuple[str, str]] = []

    async def resolve(self, user_id: str, workspace_id: str) -> V:
        self.calls.append((user_id, workspace_id))
        return self.view
