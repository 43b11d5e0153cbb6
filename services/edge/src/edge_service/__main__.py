"""Composition root of the edge: HTTPS (TLS 1.2+) in front of the gRPC services.

``RAILGUARD_EDGE_WORKERS`` (default: the number of CPUs) edge processes serve the port; with 1
the edge serves in this process, otherwise this process supervises the workers
(:mod:`edge_service.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import NoReturn

import uvicorn
from servicekit import Settings, configure_logging, load_settings
from servicekit.runtime import help_requested, service_usage
from servicekit.tracing import configure_tracing

from edge_service.app import build_edge
from edge_service.config import EdgeSettings
from edge_service.gateway import security_headers
from edge_service.http_server import EdgeServer, edge_protocol
from edge_service.workers import parent_gone, supervise

# TLS 1.3 suites are always on; for TLS 1.2 only forward-secret AEAD suites (Python's default
# minimum version is already TLS 1.2).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def edge_workers(settings: Settings) -> int:
    """``RAILGUARD_EDGE_WORKERS``: how many edge processes serve the port (default: the CPUs it
    may use; a CPU quota such as a Kubernetes limit is not seen, so set it there)."""
    return EdgeSettings.load(settings).workers


async def _watch_parent(server: EdgeServer, parent: int) -> None:
    """A worker stops (gracefully) when its supervisor has gone, e.g. after a SIGKILL."""
    while not server.should_exit:
        await asyncio.sleep(0.5)
        if parent_gone(parent):
            server.handle_exit(signal.SIGTERM, None)


async def serve(
    settings: Settings, edge_settings: EdgeSettings, sock: socket.socket | None = None
) -> None:
    """One edge: on its own port, or as a worker on the supervisor's socket ``sock``."""
    stop_tracing = configure_tracing(settings)  # before build: the channels pick it up
    edge = await build_edge(settings, edge_settings)
    if stop_tracing is not None:
        edge.on_stop.append(stop_tracing)
    host, _, port = settings.listen.rpartition(":")
    max_head = edge_settings.max_header_bytes
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
    server = EdgeServer(config, settings.grace_seconds, worker=sock is not None)
    watcher = asyncio.create_task(_watch_parent(server, os.getppid())) if sock is not None else None
    try:
        await server.serve(sockets=[sock] if sock is not None else None)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        for hook in reversed(edge.on_stop):
            await hook()


def _exit_now(code: int) -> NoReturn:
    """Exit once everything is released and flushed, skipping the interpreter's teardown (up to
    seconds of module and thread finalisation on a busy machine), so that a worker's exit, and
    the supervisor's after it, follow the end of serving at once."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> int:
    settings = load_settings("edge")
    configure_logging("edge", settings.log_level)
    edge_settings = EdgeSettings.load(settings)
    if edge_settings.worker_fd:  # a worker of a supervisor: serve on the socket it bound
        asyncio.run(
            serve(settings, edge_settings, socket.socket(fileno=int(edge_settings.worker_fd)))
        )
        _exit_now(0)
    workers = edge_settings.workers
    if workers == 1:
        asyncio.run(serve(settings, edge_settings))
        return 0
    host, _, port = settings.listen.rpartition(":")
    _exit_now(supervise(host.strip("[]"), int(port), workers, settings.grace_seconds, os.environ))


if __name__ == "__main__":
    if help_requested(sys.argv):
        print(service_usage("edge", {"serve": "run the HTTPS edge (the default)"}))  # noqa: T201
        raise SystemExit(0)
    raise SystemExit(main())
