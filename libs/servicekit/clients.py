"""Calling another Railguard service: one mTLS channel per peer, principal and request id forwarded."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from servicekit import context, tracing
from servicekit.settings import Settings
from servicekit.status import error_from_rpc
from servicekit.tls import TlsFiles, client_credentials

__all__ = [
    "call",
    "channel_options",
    "idempotent_reads",
    "open_channel",
    "outgoing_metadata",
    "service_config",
]

T = TypeVar("T")


# Contract modules whose reads get a retry policy: those this process has loaded. A caller
# imports its peer's stubs before it opens the channel (module top of every composition root),
# and a contract it never loaded costs it no memory here (~0.4 MB each). A method left out is
# only not retried, the safe side.
_CONTRACTS = (
    "railguard.auth.v1.auth_service_pb2",
    "railguard.workspaces.v1.workspaces_service_pb2",
    "railguard.keys.v1.keys_service_pb2",
    "railguard.credentials.v1.credentials_service_pb2",
)
# AIP standard reads plus ResolveAccess: no side effects, so a retry is always safe.
_IDEMPOTENT_PREFIXES = ("Get", "List", "Resolve")
MAX_RECONNECT_BACKOFF_MS = 1000
KEEPALIVE_TIME_MS = 20_000
# the fastest client keepalive a server accepts (servicekit.server allows it); keep them in step
MIN_CLIENT_PING_INTERVAL_MS = 10_000


def idempotent_reads() -> list[dict[str, str]]:
    """``{"service", "method"}`` of every read RPC (Get*, List*, Resolve*) of the loaded contracts."""
    names: list[dict[str, str]] = []
    for module_name in _CONTRACTS:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.name.startswith(_IDEMPOTENT_PREFIXES):
                    names.append({"service": service.full_name, "method": method.name})
    return names


def service_config() -> dict[str, Any]:
    """round_robin over every address the target resolves to; bounded retries for reads only.

    A write is never retried by the channel: it may have been applied before the failure.
    gRPC retries a read only on UNAVAILABLE, at most twice more, and a token bucket stops
    retries when most calls fail (a retry must not double the load on a struggling peer).
    """
    return {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": idempotent_reads(),
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }


def channel_options() -> list[tuple[str, Any]]:
    """Every peer channel's options: reconnect within ~1 s of a peer's return, keepalives, retries.

    gRPC's default reconnect backoff grows to 120 s, so a peer back after an outage stayed
    unreachable for up to that long; here it is capped at one second.
    """
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(service_config())),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def open_channel(settings: Settings, address: str) -> grpc.aio.Channel:
    """An mTLS channel to ``address`` presenting this service's certificate (options above)."""
    credentials = client_credentials(TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_ca))
    return grpc.aio.secure_channel(
        address,
        credentials,
        options=channel_options(),
        interceptors=tracing.client_interceptors(),
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
