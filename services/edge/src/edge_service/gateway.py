"""The edge application: routes from the contracts, authentication, policy, limits, problem+json.

Hand-written routes are only the edge's own: health, readiness, JWKS and the OpenAPI document,
plus the audit WebSocket stream (``audit_stream``, passed in as ``extra_routes``). Everything else
is one generic handler driven by the route table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from google.protobuf.message import Message as ProtoMessage
from servicekit import errors
from servicekit.access import RpcInfo, workspace_id_from_name
from servicekit.context import Principal, new_request_id
from servicekit.metrics import Metrics
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_service.client_ip import ClientIpResolver
from edge_service.policy import WorkspaceAccess, authorize
from edge_service.problems import problem_from_error, problem_from_rpc, problem_response
from edge_service.ratelimit import Limiter, LimitTable
from edge_service.routes import RouteTable
from edge_service.tokens import TokenVerifier
from edge_service.transcode import HttpFacts, build_request, render_response

__all__ = ["ApiKeyVerifier", "EdgeConfig", "Upstream", "build_app"]

_log = logging.getLogger("edge.http")
_API_KEY = re.compile(r"^rg_(live|test)_")
_ID_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ApiKeyVerifier(Protocol):
    async def verify(
        self, key: str, client_ip: str, origin: str, required_scope: str
    ) -> Principal: ...

    async def introspect(self, key: str, client_ip: str, origin: str) -> Principal: ...


class Upstream(Protocol):
    async def invoke(
        self,
        info: RpcInfo,
        request: ProtoMessage,
        principal: Principal,
        request_id: str,
        deadline: float,
    ) -> ProtoMessage: ...


@dataclass
class EdgeConfig:
    max_body_bytes: int = 64 * 1024
    upstream_timeout: float = 10.0
    hsts_seconds: int = 63072000
    extra_ready_checks: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds HSTS and the usual hardening headers to every response, errors included."""

    def __init__(self, app: ASGIApp, hsts_seconds: int) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
        self.headers.append(
            (b"strict-transport-security", f"max-age={hsts_seconds}; includeSubDomains".encode())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in self.headers if h[0] not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Gateway:
    def __init__(
        self,
        routes: RouteTable,
        upstream: Upstream,
        tokens: TokenVerifier,
        access: WorkspaceAccess,
        client_ip: ClientIpResolver,
        limiter: Limiter,
        limits: LimitTable,
        api_keys: ApiKeyVerifier | None,
        config: EdgeConfig,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.routes, self.upstream, self.tokens, self.access = routes, upstream, tokens, access
        self.client_ip, self.limiter, self.limits, self.api_keys, self.config = (
            client_ip,
            limiter,
            limits,
            api_keys,
            config,
        )

    def client_ip_of(self, conn: HTTPConnection) -> str:
        """The client address of a request or WebSocket, by the trusted-proxy rules."""
        peer = conn.client.host if conn.client else ""
        return self.client_ip.resolve(peer, conn.headers.getlist("x-forwarded-for"))

    def credentials(self, conn: HTTPConnection, offered: str = "") -> tuple[str, str]:
        """("jwt"|"key"|"", secret) from Authorization, X-API-Key or ``offered`` (a WebSocket's
        subprotocol token); more than one at once is refused."""
        auth = conn.headers.get("authorization", "")
        found = []
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise errors.Unauthenticated(
                    "use Authorization: Bearer <token>", reason="UNAUTHENTICATED"
                )
            found.append(value.strip())
        header_key = conn.headers.get("x-api-key", "")
        found += [secret for secret in (header_key, offered) if secret]
        if len(found) > 1:
            raise errors.InvalidArgument(
                "send one credential, not two", reason="AMBIGUOUS_CREDENTIALS"
            )
        if not found:
            return "", ""
        # whatever arrives in X-API-Key is a key, so a mistyped one gets the key's own reason
        is_key = bool(header_key) or bool(_API_KEY.match(found[0]))
        return ("key" if is_key else "jwt"), found[0]

    async def principal_for(
        self, kind: str, secret: str, client_ip: str, origin: str, required_scope: str
    ) -> Principal:
        """Authenticate a credential: a JWT locally, an API key through the keys service."""
        if kind == "jwt":
            claims = await self.tokens.verify(secret)
            return Principal(
                user_id=claims.user_id,
                session_id=claims.session_id,
                aal=claims.aal,
                amr=claims.amr,
                client_ip=client_ip,
                auth_time=claims.auth_time,
                email_verified=claims.email_verified,
            )
        if kind == "key":
            if self.api_keys is None:
                raise errors.Unauthenticated("API keys are not enabled", reason="UNAUTHENTICATED")
            if not required_scope:
                raise errors.PermissionDenied(
                    "API keys cannot call this method", reason="API_KEY_NOT_ALLOWED"
                )
            # the keys service also checks the Origin against the key's allowed origins
            return await self.api_keys.verify(secret, client_ip, origin, required_scope)
        raise errors.Unauthenticated("authentication required", reason="UNAUTHENTICATED")

    async def whoami(self, request: Request) -> Response:
        """The principal behind the presented token or key, its workspace, scopes and limits."""
        request_id = new_request_id()
        try:
            client_ip = self.client_ip_of(request)
            kind, secret = self.credentials(request)
            plan = 0
            if kind == "jwt":
                claims = await self.tokens.verify(secret)
                body: dict[str, object] = {
                    "type": "user",
                    "userId": claims.user_id,
                    "sessionId": claims.session_id,
                    "aal": claims.aal,
                    "amr": list(claims.amr),
                }
            elif kind == "key" and self.api_keys is not None:
                principal = await self.api_keys.introspect(
                    secret, client_ip, request.headers.get("origin", "")
                )
                view = await self.access.resolve(principal.user_id, principal.workspace_id)
                if not view.member or view.deleted:
                    raise errors.Unauthenticated(
                        "the key's creator no longer has access", reason="KEY_CREATOR_REMOVED"
                    )
                plan = view.plan
                body = {
                    "type": "apiKey",
                    "apiKeyId": principal.api_key_id,
                    "workspace": f"workspaces/{principal.workspace_id}",
                    "createdBy": principal.user_id,
                    "scopes": list(principal.scopes),
                }
            else:
                raise errors.Unauthenticated("authentication required", reason="UNAUTHENTICATED")
            body["clientIp"] = client_ip
            body["rateLimits"] = [
                {"class": name, "quota": limit.quota, "windowSeconds": int(limit.window)}
                for name, limit in self.limits.all_for_plan(plan).items()
            ]
            response = Response(json.dumps(body), media_type="application/json")
        except errors.RailguardError as exc:
            response = problem_from_error(exc, request_id)
        except grpc.aio.AioRpcError as exc:
            response = problem_from_rpc(exc, request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    async def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        started = time.perf_counter()
        status = 500
        try:
            response = await self._handle(request, request_id)
            status = response.status_code
        except errors.RailguardError as exc:
            response = problem_from_error(exc, request_id)
            if isinstance(exc, _RateLimited):
                response.headers.update(exc.headers)
            status = response.status_code
        except grpc.aio.AioRpcError as exc:
            response = problem_from_rpc(exc, request_id)
            status = response.status_code
            if status >= 500:
                _log.warning(
                    "upstream failed",
                    extra={"grpc_code": exc.code().name, "request_id": request_id},
                )
        except Exception:
            _log.exception("unhandled error", extra={"request_id": request_id})
            response = problem_response(500, "INTERNAL", "internal error", request_id)
        response.headers["X-Request-Id"] = request_id
        if self.metrics is not None:
            operation = getattr(request.state, "operation", "unrouted")
            self.metrics.http_request(operation, status, time.perf_counter() - started)
        _log.info(
            "http",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.url.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return response

    def _preflight(self, request: Request, request_id: str) -> Response:
        """Answer a CORS preflight for any routed path.

        A preflight carries no credentials, so it cannot know the key's origins: it lets the
        browser send the request, and the actual request is refused (403, no
        Access-Control-Allow-Origin) unless the key allows the origin.
        """
        origin = request.headers.get("origin", "")
        wanted = request.headers.get("access-control-request-method", "")
        route, other_verb = self.routes.resolve(wanted, request.url.path)
        if not origin or route is None:
            status = 405 if other_verb else 404
            code = "METHOD_NOT_ALLOWED" if other_verb else "ROUTE_NOT_FOUND"
            return problem_response(
                status, code, "no such route for a cross-origin request", request_id
            )
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": wanted,
                "Access-Control-Allow-Headers": "Authorization, X-API-Key, Content-Type",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )

    async def _handle(self, request: Request, request_id: str) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request, request_id)
        route, other_verb = self.routes.resolve(request.method, request.url.path)
        if route is None:
            if other_verb:
                return problem_response(
                    405, "METHOD_NOT_ALLOWED", "method not allowed for this path", request_id
                )
            return problem_response(404, "ROUTE_NOT_FOUND", "no such route", request_id)
        request.state.operation = route.info.operation_id
        rule = route.info.rule
        assert rule is not None  # the route table holds only ruled RPCs
        try:
            body = await _read_body(request, self.config.max_body_bytes)
        except _BodyTooLarge:
            return problem_response(
                413,
                "BODY_TOO_LARGE",
                f"the body exceeds {self.config.max_body_bytes} bytes",
                request_id,
            )
        if body.strip() and "json" not in request.headers.get("content-type", "application/json"):
            return problem_response(
                415, "UNSUPPORTED_MEDIA_TYPE", "send application/json", request_id
            )
        path_params = route.match(request.url.path) or {}
        for variable, value in path_params.items():
            if not all(_ID_SEGMENT.match(segment) for segment in value.split("/")):
                raise errors.InvalidArgument.field(
                    variable, "is not a valid resource name", reason="INVALID_NAME"
                )
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        facts = HttpFacts(request.headers, request.headers.get("content-type", ""), len(body))
        message = build_request(route, path_params, body, query, facts)
        client_ip = self.client_ip_of(request)
        if rule.public:
            await self._limit(f"ip:{client_ip}", rule.rate_limit, 0)
        principal = None
        if not rule.public:
            kind, secret = self.credentials(request)
            origin = request.headers.get("origin", "")
            principal = await self.principal_for(kind, secret, client_ip, origin, rule.scope)
        workspace_id = next(
            (w for v in path_params.values() if (w := workspace_id_from_name(v))), None
        )
        forwarded, view = await authorize(rule, principal, workspace_id, self.access)
        forwarded = dataclasses.replace(
            forwarded,
            client_ip=client_ip,
            user_agent=_printable(request.headers.get("user-agent", ""))[:200],
        )
        if not rule.public:
            who = (
                f"key:{forwarded.api_key_id}"
                if forwarded.api_key_id
                else f"user:{forwarded.user_id}"
            )
            decision_headers = await self._limit(who, rule.rate_limit, view.plan if view else 0)
        else:
            decision_headers = {}
        result = await self.upstream.invoke(
            route.info, message, forwarded, request_id, self.config.upstream_timeout
        )
        origin = request.headers.get("origin", "")
        if origin and forwarded.is_api_key:
            # the keys service has verified this origin against the key's allowlist
            decision_headers.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Expose-Headers": "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After",
                    "Vary": "Origin",
                }
            )
        return Response(
            json.dumps(render_response(result)),
            media_type="application/json",
            headers=decision_headers,
        )

    async def _limit(self, who: str, rate_class: int, plan: int) -> dict[str, str]:
        limit = self.limits.limit(rate_class, plan)
        decision = await self.limiter.hit(f"{limit.name}:{who}", limit)
        if not decision.allowed:
            raise _RateLimited(decision.headers(), decision.retry_after)
        return decision.headers()


def _printable(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable() and ord(ch) < 127)


class _RateLimited(errors.ResourceExhausted):
    def __init__(self, headers: dict[str, str], retry_after: float) -> None:
        super().__init__(
            "rate limit exceeded; retry later", reason="RATE_LIMITED", retry_after=retry_after
        )
        self.headers = headers


def build_app(
    gateway: Gateway,
    openapi: Callable[[], dict[str, object]],
    ready: Callable[[], Awaitable[bool]],
    config: EdgeConfig,
    extra_routes: Sequence[BaseRoute] = (),
) -> ASGIApp:
    async def dispatch(request: Request) -> Response:
        response = await gateway.handle(request)
        return response

    async def healthz(request: Request) -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        ok = await ready()
        return Response(
            json.dumps({"status": "ready" if ok else "not ready"}),
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    async def jwks(request: Request) -> Response:
        if not gateway.tokens.ready:
            try:
                await gateway.tokens.refresh(force=True)
            except errors.RailguardError:
                return problem_response(
                    503, "SERVICE_UNAVAILABLE", "keys not available yet", new_request_id()
                )
        return Response(
            gateway.tokens.jwks_json,
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    openapi_doc = json.dumps(openapi())

    async def whoami(request: Request) -> Response:
        return await gateway.whoami(request)

    async def openapi_json(request: Request) -> Response:
        return Response(openapi_doc, media_type="application/json")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(
        routes=[
            StarletteRoute("/healthz", healthz, methods=["GET"]),
            StarletteRoute("/readyz", readyz, methods=["GET"]),
            StarletteRoute("/.well-known/jwks.json", jwks, methods=["GET"]),
            StarletteRoute("/openapi.json", openapi_json, methods=["GET"]),
            StarletteRoute("/v1/whoami", whoami, methods=["GET"]),
            *extra_routes,
            StarletteRoute("/{path:path}", dispatch, methods=methods),
        ]
    )
    return SecurityHeaders(app, config.hsts_seconds)
