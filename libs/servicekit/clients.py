"""Calling another Railguard service: one mTLS channel per peer, principal and request id forwarded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from servicekit import context
from servicekit.settings import Settings
from servicekit.status import error_from_rpc
from servicekit.tls import TlsFiles, client_credentials

__all__ = ["call", "open_channel", "outgoing_metadata"]

T = TypeVar("T")


def open_channel(settings: Settings, address: str) -> grpc.aio.Channel:
    """An mTLS channel to ``address`` presenting this service's certificate."""
    credentials = client_credentials(TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_ca))
    return grpc.aio.secure_channel(
        address,
        credentials,
        options=[("grpc.enable_retries", 1), ("grpc.lb_policy_name", "round_robin")],
    )


def outgoing_metadata(
    principal: context.Principal | None = None, request_id: str = ""
) -> tuple[tuple[str, Any], ...]:
    """Metadata for a downstream call: the request id and, when given, the principal."""
    rid = request_id or context.current().request_id
    md: list[tuple[str, Any]] = [(context.REQUEST_ID_METADATA_KEY, rid)]
    if principal is not None:
        md.append((context.PRINCIPAL_METADATA_KEY, principal.to_proto(rid).SerializeToString()))
    return tuple(md)


async def call(
    method: Callable[..., Awaitable[T]],
    request: Any,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - a gRPC deadline, not an asyncio timeout
    principal: context.Principal | None = None,
) -> T:
    """Invoke a stub method with a deadline; a failure comes back as the domain error it carried."""
    try:
        return await method(request, timeout=timeout, metadata=outgoing_metadata(principal))
    except grpc.aio.AioRpcError as err:
        raise error_from_rpc(err) from None
