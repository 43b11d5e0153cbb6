"""Composition root of the edge: HTTPS (TLS 1.2+) in front of the gRPC services."""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from servicekit import configure_logging, load_settings
from servicekit.runtime import help_requested, service_usage
from servicekit.tracing import configure_tracing

from edge_service.app import build_edge
from edge_service.gateway import security_headers
from edge_service.http_server import EdgeServer, edge_protocol

# TLS 1.3 suites are always on; for TLS 1.2 only forward-secret AEAD suites (Python's default
# minimum version is already TLS 1.2).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


async def main() -> None:
    settings = load_settings("edge")
    configure_logging("edge", settings.log_level)
    stop_tracing = configure_tracing(settings)  # before build: the channels pick it up
    edge = await build_edge(settings)
    if stop_tracing is not None:
        edge.on_stop.append(stop_tracing)
    host, _, port = settings.listen.rpartition(":")
    max_head = settings.get_int("EDGE_MAX_HEADER_BYTES", 16 * 1024, minimum=1024)
    config = uvicorn.Config(
        edge.app,  # type: ignore[arg-type]
        http=edge_protocol(security_headers(edge.hsts_seconds), max_head),
        h11_max_incomplete_event_size=max_head,
        host=host.strip("[]"),
        port=int(port),
        ssl_certfile=str(settings.tls_cert),
        ssl_keyfile=str(settings.tls_key),
        ssl_ciphers=TLS12_CIPHERS,
        proxy_headers=False,  # the client IP comes from our own trusted-proxy rules only
        server_header=False,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.grace_seconds),
    )
    server = EdgeServer(config, settings.grace_seconds)
    try:
        await server.serve()
    finally:
        for hook in reversed(edge.on_stop):
            await hook()


if __name__ == "__main__":
    if help_requested(sys.argv):
        print(service_usage("edge", {"serve": "run the HTTPS edge (the default)"}))  # noqa: T201
        raise SystemExit(0)
    asyncio.run(main())
