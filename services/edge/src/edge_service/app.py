"""Wiring of the edge: settings → upstream channels, verifiers, limiter → the ASGI app."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from servicekit import tracing
from servicekit.access import describe_services
from servicekit.metrics import Metrics, serve_metrics
from servicekit.settings import Settings
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from edge_service.api_keys import KeyOrigins, KeysServiceVerifier
from edge_service.audit_stream import (
    LIST_AUDIT_EVENTS,
    STREAM_AUDIT_EVENTS,
    AuditStreamRoute,
    GrpcAuditStreams,
)
from edge_service.audit_stream import PATH as AUDIT_STREAM_PATH
from edge_service.client_ip import ClientIpResolver
from edge_service.config import EdgeSettings
from edge_service.feeds import AccessCache, FeedClient
from edge_service.gateway import (
    AllowedOriginSet,
    ApiKeyVerifier,
    EdgeConfig,
    Gateway,
    build_app,
    request_id_of,
)
from edge_service.openapi import build_openapi
from edge_service.problems import problem_response
from edge_service.ratelimit import Limiter, LimitTable, MemoryLimiter, RedisLimiter
from edge_service.redis_fallback import FallbackLimiter, RedisHealth, redis_clients
from edge_service.routes import RouteTable
from edge_service.sessions import SessionGuard
from edge_service.tokens import TokenVerifier
from edge_service.tracing import HttpTracing
from edge_service.upstream import Upstreams

__all__ = ["CONTRACTS", "Edge", "build_edge", "contract_modules"]

CONTRACTS = (
    "railguard.auth.v1.auth_service_pb2",
    "railguard.workspaces.v1.workspaces_service_pb2",
    "railguard.keys.v1.keys_service_pb2",
    "railguard.credentials.v1.credentials_service_pb2",
)


def contract_modules() -> list[ModuleType]:
    """The generated modules of every service the edge fronts (those present in this build)."""
    modules = []
    for name in CONTRACTS:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError:
            continue
    return modules


async def upgrade_required(request: Request) -> Response:
    """A plain GET on the WebSocket stream's path: say how to open it (426, RFC 9110)."""
    request_id = request_id_of(request)
    response = problem_response(
        426, "UPGRADE_REQUIRED", "open this route as a WebSocket (wss://)", request_id
    )
    response.headers["Upgrade"] = "websocket"
    response.headers["Connection"] = "Upgrade"
    response.headers["X-Request-Id"] = request_id
    return response


FEED_PEERS = ("workspaces", "keys", "auth")


def _auth_feed_to(guard: SessionGuard) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    """The auth feed's handlers: a session change ends that session; anything else, a resync."""

    def on_change(topic: str, key: str) -> None:
        if topic == "session":
            guard.revoke(key)
        else:
            guard.clear()  # a topic this edge does not know: fail safe

    return on_change, guard.clear


@dataclass
class Edge:
    app: object
    gateway: Gateway
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    hsts_seconds: int = EdgeConfig.hsts_seconds
    feeds: dict[str, FeedClient] = field(default_factory=dict)
    sessions: SessionGuard | None = None


def _pushed_state(
    settings: EdgeSettings, upstream: Upstreams
) -> tuple[dict[str, FeedClient], AccessCache | Upstreams, SessionGuard]:
    """The change feeds (edge_service.feeds) and what they keep fresh: the access cache (the
    workspaces feed) and the session guard (the auth feed). Pushed state while a feed is live;
    asking the owning service every time otherwise, or with ``RAILGUARD_EDGE_CHANGE_FEEDS=off``."""
    feeds: dict[str, FeedClient] = {}
    if settings.change_feeds:
        feeds = {peer: FeedClient(peer, upstream.channels[peer]) for peer in FEED_PEERS}
    access: AccessCache | Upstreams = upstream
    if "workspaces" in feeds:
        workspaces_feed = feeds["workspaces"]
        cache = AccessCache(
            upstream,
            lambda: workspaces_feed.live,
            max_entries=settings.access_cache_entries,
        )
        workspaces_feed.on_change.append(cache.on_change)
        workspaces_feed.on_reset.append(cache.clear)
        access = cache
    auth_feed = feeds.get("auth")
    sessions = SessionGuard(
        upstream.session_active,
        live=(lambda: auth_feed.live) if auth_feed is not None else (lambda: False),
        retain=settings.session_retain_seconds,
    )
    if auth_feed is not None:
        on_change, on_reset = _auth_feed_to(sessions)
        auth_feed.on_change.append(on_change)
        auth_feed.on_reset.append(on_reset)
    return feeds, access, sessions


def _api_keys(
    settings: EdgeSettings,
    upstream: Upstreams,
    keys_feed: FeedClient | None,
    redis_pubsub: Any,
    redis_health: RedisHealth,
) -> tuple[KeysServiceVerifier, KeyOrigins]:
    """The API-key verifier and the allowed-origin set, kept fresh by the keys feed while it is
    live and by the Redis fan-out when there is one; ≤ 0.5 s cached otherwise (even with Redis: a
    lost invalidation must still not keep a key alive past one second)."""
    verifier = KeysServiceVerifier(
        upstream.channels["keys"],
        ttl=settings.key_cache_seconds,
        redis=redis_pubsub,
        health=redis_health,
        live=(lambda: keys_feed.live) if keys_feed is not None else (lambda: False),
        live_ttl=settings.key_feed_cache_seconds,
    )
    if keys_feed is not None:
        keys_feed.on_change.append(verifier.on_change)
        keys_feed.on_reset.append(verifier.clear)
    origins = KeyOrigins(upstream.channels["keys"])
    verifier.on_invalidate.append(origins.invalidate)  # a revoked key's origins go at once
    return verifier, origins


async def build_edge(  # noqa: C901 - the composition root wires each part in order
    settings: Settings, edge: EdgeSettings | None = None
) -> Edge:
    """The edge's app and gateway over channels to the services; ``edge`` defaults to the
    edge settings read from ``settings``."""
    edge = edge or EdgeSettings.load(settings)
    infos = describe_services(contract_modules())
    routes = RouteTable(infos)
    upstream = Upstreams(settings, infos)
    on_stop: list[Callable[[], Awaitable[None]]] = [upstream.close]
    limiter: Limiter = MemoryLimiter()
    metrics = Metrics("edge")
    redis_client = redis_pubsub = None
    redis_health = RedisHealth(metrics)
    redis_errors: tuple[type[BaseException], ...] = ()
    if settings.redis_url:
        # Redis accelerates; without it limits are per process and the key cache is bounded
        redis_client, redis_pubsub, redis_errors = redis_clients(settings.redis_url)
        limiter = FallbackLimiter(RedisLimiter(redis_client), redis_health, redis_errors)
        on_stop += [redis_client.aclose, redis_pubsub.aclose]
    tokens = TokenVerifier(upstream.jwks, settings.issuer, settings.audience)
    feeds, access, sessions = _pushed_state(edge, upstream)
    api_keys: ApiKeyVerifier | None = None
    origins: AllowedOriginSet | None = None
    if any(info.service.full_name == "railguard.keys.v1.KeysService" for info in infos):
        verifier, origins = _api_keys(edge, upstream, feeds.get("keys"), redis_pubsub, redis_health)
        await verifier.start()
        on_stop.insert(0, verifier.close)
        api_keys = verifier
    limits = LimitTable(scale=edge.rate_limit_scale)
    config = EdgeConfig(max_body_bytes=edge.max_body_bytes)
    stop_metrics = serve_metrics(metrics, edge.metrics_listen)
    if stop_metrics is not None:
        on_stop.append(stop_metrics)
    gateway = Gateway(
        routes,
        upstream,
        tokens,
        access,  # from the workspaces feed while it is live; ResolveAccess otherwise
        ClientIpResolver(list(edge.trusted_proxies)),
        limiter,
        limits,
        api_keys,
        config,
        metrics,
        sessions=sessions,
        origins=origins,
        ipv6_prefix=edge.ipv6_prefix,
    )

    async def ready() -> bool:
        try:
            await tokens.refresh()
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            return False
        return tokens.ready

    async def degraded() -> list[str]:
        """Dependencies the edge runs without right now (it is still ready: it has fallbacks):
        ``feed:<service>`` for a change feed that is not live (the edge asks that service on
        every request meanwhile), ``redis`` while Redis is down."""
        lagging = [f"feed:{name}" for name, feed in feeds.items() if not feed.live]
        return lagging + await redis_degraded()

    async def redis_degraded() -> list[str]:
        if redis_client is None:
            return []
        if redis_health.should_try():
            try:
                await redis_client.ping()
            except redis_errors as exc:
                redis_health.failed(exc, "readiness")
            else:
                redis_health.succeeded()
        subscribed = api_keys is None or getattr(api_keys, "subscribed", True)
        return [] if redis_health.up and subscribed else ["redis"]

    extra_routes: list[BaseRoute] = []
    rules = {info.full_method: info.rule for info in infos}
    list_rule = rules.get(LIST_AUDIT_EVENTS)
    if list_rule is not None and STREAM_AUDIT_EVENTS in rules:
        # the stream is authorized with ListAuditEvents' rule, read from the contract
        stream = AuditStreamRoute(
            gateway,
            GrpcAuditStreams(upstream.channels["workspaces"]),
            list_rule,
            recheck=edge.audit_stream_recheck_seconds,
            max_streams=edge.max_audit_streams,
        )
        extra_routes.append(WebSocketRoute(AUDIT_STREAM_PATH, stream.handle))
        extra_routes.append(Route(AUDIT_STREAM_PATH, upgrade_required, methods=["GET"]))
    stream_rule = list_rule if extra_routes else None
    app = build_app(
        gateway,
        lambda: build_openapi(routes, stream_rule=stream_rule),
        ready,
        config,
        extra_routes,
        degraded=degraded,
    )
    if tracing.enabled():
        app = HttpTracing(app)
    for feed in feeds.values():
        feed.start()
        on_stop.insert(0, feed.close)
    return Edge(app, gateway, on_stop, config.hsts_seconds, feeds, sessions)
