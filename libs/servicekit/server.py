"""``serve()``: how every Railguard gRPC service is built, started and stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from servicekit.access import describe_services
from servicekit.clients import MIN_CLIENT_PING_INTERVAL_MS
from servicekit.interceptors import default_interceptors, server_interceptors
from servicekit.metrics import Metrics, serve_metrics
from servicekit.settings import Settings
from servicekit.spiffe import DEFAULT_TRUST_DOMAIN as TRUST_DOMAIN
from servicekit.tls import TlsFiles, server_credentials

__all__ = ["Registration", "RunningServer", "serve", "start_server"]

_log = logging.getLogger("servicekit.server")


@dataclass(frozen=True, slots=True)
class Registration:
    """One servicer and the generated module that defines its service."""

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: object
    module: ModuleType
    drain: Callable[[], None] | None = None  # on shutdown, before the grace: end endless streams


@dataclass(slots=True)
class RunningServer:
    """A started server: its bound port and how to stop it gracefully."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    grace: float
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    health_server: grpc.aio.Server | None = None
    drains: list[Callable[[], None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Report NOT_SERVING, drain in-flight calls for ``grace`` seconds, then release resources."""
        await self.health.enter_graceful_shutdown()
        for drain in self.drains:  # streams that never end on their own end now (callers resume)
            drain()
        await self.server.stop(self.grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        for hook in reversed(self.on_stop):
            await hook()


def _max_connection_age_ms(settings: Settings) -> int:
    """``RAILGUARD_MAX_CONNECTION_AGE_SECONDS`` (default 300, at least 1) in milliseconds."""
    seconds = settings.get_float("MAX_CONNECTION_AGE_SECONDS", 300.0)
    return int(max(1.0, seconds) * 1000)


async def start_server(
    settings: Settings,
    registrations: Sequence[Registration],
    *,
    on_stop: Iterable[Callable[[], Awaitable[None]]] = (),
    asserters: Iterable[str] = ("edge",),
) -> RunningServer:
    """Build the server with the one-pass interceptor, health and reflection; bind with mTLS; start."""
    infos = describe_services(r.module for r in registrations)
    rules = {info.full_method: info for info in infos}
    domain = f"{settings.service_name}.railguard.dev"
    metrics = Metrics(settings.service_name)
    stop_metrics = serve_metrics(metrics, settings.get("METRICS_LISTEN"))
    trust_domain = settings.get("TRUST_DOMAIN", TRUST_DOMAIN)
    stages = default_interceptors(domain, rules, tuple(asserters), metrics, trust_domain)
    server = grpc.aio.server(
        interceptors=server_interceptors(stages),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            # accept the peers' keepalive pings (servicekit.clients), idle channels included
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
            ("grpc.http2.max_ping_strikes", 0),
            # GOAWAY each connection after this age (streams in flight finish on it): clients then
            # re-resolve their dns:/// target, so replicas added by a scale-up get traffic too
            ("grpc.max_connection_age_ms", _max_connection_age_ms(settings)),
        ],
    )
    for registration in registrations:
        registration.add_to_server(registration.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = sorted({info.service.full_name for info in infos})
    reflection.enable_server_reflection(
        [
            *service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    credentials = server_credentials(TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_ca))
    port = server.add_secure_port(settings.listen, credentials)
    if port == 0:
        raise RuntimeError(f"could not bind {settings.listen}")
    await server.start()
    for name in ["", *service_names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_server = await _start_health_server(settings.get("HEALTH_LISTEN"), health_servicer)
    _log.info("serving", extra={"listen": settings.listen, "port": port})
    hooks = [*on_stop, *([stop_metrics] if stop_metrics else [])]
    drains = [r.drain for r in registrations if r.drain is not None]
    return RunningServer(
        server, health_servicer, port, settings.grace_seconds, hooks, health_server, drains
    )


async def _start_health_server(
    listen: str, servicer: health.aio.HealthServicer
) -> grpc.aio.Server | None:
    """A plaintext listener with the health service only, for kubelet gRPC probes (no client certs).

    It exposes nothing but SERVING/NOT_SERVING; every Railguard RPC stays behind mutual TLS.
    """
    if not listen:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if server.add_insecure_port(listen) == 0:
        raise RuntimeError(f"could not bind the health port {listen}")
    await server.start()
    return server


async def serve(
    settings: Settings,
    registrations: Sequence[Registration],
    *,
    on_stop: Iterable[Callable[[], Awaitable[None]]] = (),
    asserters: Iterable[str] = ("edge",),
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    running = await start_server(settings, registrations, on_stop=on_stop, asserters=asserters)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    _log.info("shutting down", extra={"grace_seconds": running.grace})
    await running.stop()
