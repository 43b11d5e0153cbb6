"""The edge's own settings, typed and read once (their meanings: ``servicekit.catalog``).

``EdgeSettings.load`` is the one place the edge reads a ``RAILGUARD_EDGE_*`` (or other
edge-specific) variable; the composition root and ``build_edge`` take the typed object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from servicekit.settings import Settings

from edge_service.api_keys import SAFE_TTL
from edge_service.sessions import MAX_ACCESS_TOKEN_SECONDS, RETAIN_MARGIN_SECONDS

__all__ = ["EdgeSettings", "usable_cpus"]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), not the host's count."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return max(1, len(affinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """Everything the edge reads beyond the shared :class:`~servicekit.settings.Settings`."""

    workers: int
    worker_fd: str
    max_header_bytes: int
    max_body_bytes: int
    ipv6_prefix: int
    trusted_proxies: tuple[str, ...]
    rate_limit_scale: float
    change_feeds: bool
    access_cache_entries: int
    key_cache_seconds: float
    key_feed_cache_seconds: float
    session_retain_seconds: float
    audit_stream_recheck_seconds: float
    max_audit_streams: int
    metrics_listen: str

    @classmethod
    def load(cls, settings: Settings) -> EdgeSettings:
        """Read and check every edge setting; a bad value stops start-up (``ValueError``)."""
        workers = settings.get_int("EDGE_WORKERS", usable_cpus(), minimum=1)
        metrics_listen = settings.get("METRICS_LISTEN")
        if workers > 1 and metrics_listen:
            # each worker would bind the metrics port, and a scrape would see one worker's counts
            raise ValueError(
                "RAILGUARD_METRICS_LISTEN needs RAILGUARD_EDGE_WORKERS=1: worker metrics are not merged"
            )
        prefix = settings.get_int("EDGE_IPV6_PREFIX", 64, minimum=32)
        if prefix > 128:
            raise ValueError("RAILGUARD_EDGE_IPV6_PREFIX must be at most 128")
        # pushed session revocations are kept for the longest access token's life (the value
        # auth signs with, never below its default) plus a margin for leeway and clock skew
        token_ttl = settings.get_float("AUTH_ACCESS_TOKEN_TTL_SECONDS", MAX_ACCESS_TOKEN_SECONDS)
        return cls(
            workers=workers,
            worker_fd=settings.get("EDGE_WORKER_FD"),
            max_header_bytes=settings.get_int("EDGE_MAX_HEADER_BYTES", 16 * 1024, minimum=1024),
            max_body_bytes=settings.get_int("EDGE_MAX_BODY_BYTES", 64 * 1024),
            ipv6_prefix=prefix,
            trusted_proxies=tuple(settings.get("EDGE_TRUSTED_PROXIES").split(",")),
            rate_limit_scale=settings.get_float("EDGE_RATE_LIMIT_SCALE", 1.0),
            change_feeds=settings.get("EDGE_CHANGE_FEEDS", "on").lower()
            not in {"off", "0", "false"},
            access_cache_entries=settings.get_int("EDGE_ACCESS_CACHE_ENTRIES", 100_000, minimum=1),
            key_cache_seconds=settings.get_float("EDGE_KEY_CACHE_SECONDS", SAFE_TTL),
            key_feed_cache_seconds=settings.get_float("EDGE_KEY_FEED_CACHE_SECONDS", 60.0),
            session_retain_seconds=max(token_ttl, MAX_ACCESS_TOKEN_SECONDS) + RETAIN_MARGIN_SECONDS,
            audit_stream_recheck_seconds=settings.get_float(
                "EDGE_AUDIT_STREAM_RECHECK_SECONDS", 5.0
            ),
            max_audit_streams=settings.get_int("EDGE_MAX_AUDIT_STREAMS", 1000),
            metrics_listen=metrics_listen,
        )
