"""Prometheus metrics: one registry per process, served on a separate plaintext listener.

The listener (``RAILGUARD_METRICS_LISTEN``, e.g. ``0.0.0.0:9090``) is off unless configured and
carries nothing but counters and histograms — never a label holding an id, key or secret —
so it can sit behind a NetworkPolicy for the scraper alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

__all__ = ["Metrics", "serve_metrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The few series every Railguard process exports."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rpcs = Counter(
            "railguard_rpc_requests",
            "gRPC calls served, by method and status code.",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "railguard_rpc_duration_seconds",
            "Time to serve a gRPC call.",
            ["service", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.http = Counter(
            "railguard_http_requests",
            "HTTP requests answered by the edge, by operation and status.",
            ["operation", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "railguard_http_duration_seconds",
            "Time for the edge to answer an HTTP request.",
            ["operation"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.service = service
        self._rpc_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def rpc(self, method: str, code: str, seconds: float) -> None:
        # the labelled children, looked up once per (method, code): every RPC passes here
        counted = self._rpc_children.get((method, code))
        if counted is None:
            counted = self._rpc_children[(method, code)] = (
                self.rpcs.labels(self.service, method, code),
                self.rpc_seconds.labels(self.service, method),
            )
        counted[0].inc()
        counted[1].observe(seconds)

    def http_request(self, operation: str, status: int, seconds: float) -> None:
        self.http.labels(operation, str(status)).inc()
        self.http_seconds.labels(operation).observe(seconds)


def serve_metrics(metrics: Metrics, listen: str) -> Callable[[], Awaitable[None]] | None:
    """Start the plaintext /metrics listener when ``listen`` (host:port) is set; returns its stop."""
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    server, thread = start_http_server(
        int(port),
        addr=host.strip("[]") or "0.0.0.0",  # noqa: S104 - the operator chose the listener
        registry=metrics.registry,
    )

    async def stop() -> None:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=5)

    return stop
