"""The edge application: routes from the contracts, authentication, policy, limits, problem+json.

Hand-written routes are only the edge's own: health, readiness, JWKS and the OpenAPI document,
plus the audit WebSocket stream (``audit_stream``, passed in as ``extra_routes``). Everything else
is one generic handler driven by the route table.

Over 500 lines on purpose: the generic handler's checks run in one documented order
(docs/architecture.md, "The edge"), and reading them in one file is how that order is reviewed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import Message as ProtoMessage
from railguard.access.v1 import access_pb2
from servicekit import errors
from servicekit.access import RpcInfo, workspace_id_from_name
from servicekit.context import Principal, new_request_id
from servicekit.metrics import Metrics
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_service.client_ip import ClientIpResolver, limit_subject
from edge_service.constraints import ID_SEGMENT, REQUEST_ID
from edge_service.feeds import KeptAnswer
from edge_service.policy import WorkspaceAccess, authorize
from edge_service.problems import problem_from_error, problem_from_rpc, problem_response
from edge_service.ratelimit import Limiter, LimitTable
from edge_service.routes import RouteTable
from edge_service.sessions import SessionGuard
from edge_service.tokens import TokenVerifier
from edge_service.transcode import HttpFacts, build_request, render_response

__all__ = [
    "AllowedOriginSet",
    "ApiKeyVerifier",
    "EdgeConfig",
    "Upstream",
    "build_app",
    "request_id_of",
    "security_headers",
]

WORKSPACES_SERVICE = "railguard.workspaces.v1.WorkspacesService"
_log = logging.getLogger("edge.http")
_API_KEY = re.compile(r"^rg_(live|test)_")


def request_id_of(conn: HTTPConnection) -> str:
    """The caller's ``X-Request-Id`` when it is well formed (kept end to end), else a new one."""
    offered = conn.headers.get("x-request-id", "")
    return offered if REQUEST_ID.fullmatch(offered) else new_request_id()


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


def security_headers(hsts_seconds: int) -> list[tuple[bytes, bytes]]:
    """HSTS and the usual hardening headers, as raw header pairs."""
    headers = [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
    headers.append(
        (b"strict-transport-security", f"max-age={hsts_seconds}; includeSubDomains".encode())
    )
    return headers


class SecurityHeaders:
    """Adds HSTS and the usual hardening headers to every response, errors included."""

    def __init__(self, app: ASGIApp, hsts_seconds: int) -> None:
        self.app = app
        self.headers = security_headers(hsts_seconds)

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


class AllowedOriginSet(Protocol):
    """The origins some active API key allows (the only ones a preflight may vouch for)."""

    async def allows(self, origin: str) -> bool: ...


_PREFLIGHT_CLASS = access_pb2.RATE_LIMIT_CLASS_UNSPECIFIED
_T = TypeVar("_T")


class Gateway:
    """The edge's request pipeline; its order of checks is stated in docs/architecture.md.

    Nothing is parsed, read or looked up for a caller before a limit has been taken for it:
    public requests (and preflights, unrouted paths, whoami, the edge's own documents) count
    against the client IP — an IPv6 client against its /``ipv6_prefix`` — before the body is
    read; a request with credentials is authenticated first, and each failed authentication
    counts against the IP too, which is refused outright (no lookup at all) once it has used its
    failures up. Every answer that was limited carries the IETF ``RateLimit`` headers.
    """

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
        *,
        sessions: SessionGuard,
        origins: AllowedOriginSet | None = None,
        ipv6_prefix: int = 64,
    ) -> None:
        self.metrics = metrics
        self.sessions = sessions
        self.routes, self.upstream, self.tokens, self.access = routes, upstream, tokens, access
        self.client_ip, self.limiter, self.limits, self.api_keys, self.config = (
            client_ip,
            limiter,
            limits,
            api_keys,
            config,
        )
        self.origins, self.ipv6_prefix = origins, ipv6_prefix
        # subject -> (monotonic instant its failed-auth budget refills, the refusal's headers)
        self._auth_blocked: dict[str, tuple[float, dict[str, str]]] = {}

    def client_ip_of(self, conn: HTTPConnection) -> str:
        """The client address of a request or WebSocket, by the trusted-proxy rules."""
        peer = conn.client.host if conn.client else ""
        return self.client_ip.resolve(peer, conn.headers.getlist("x-forwarded-for"))

    def ip_subject(self, client_ip: str) -> str:
        """The per-IP limit's subject: the address, or its IPv6 network."""
        return limit_subject(client_ip, self.ipv6_prefix)

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
        """Authenticate a credential: a JWT locally, then its session is checked (an ended
        session's tokens are refused); an API key through the keys service.

        The one place a JWT principal is made: every route, whoami and the audit stream (its
        handshake and each recheck) come through here."""
        if kind == "jwt":
            claims = await self.tokens.verify(secret)  # cached by token until exp
            # never cached past ask_ttl
            await self.sessions.check(claims.session_id, token_lifetime=claims.lifetime)
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

    async def counted(
        self, conn: HTTPConnection, client_ip: str, attempt: Callable[[], Awaitable[_T]]
    ) -> _T:
        """Run an authentication ``attempt``, counting its failure against the client IP.

        An IP that has used up its failures is refused (429) without any attempt, so a stream
        of well-formed random keys costs no lookups; the refusal that exhausts it is a 429 too.
        """
        subject = self.ip_subject(client_ip)
        now = time.monotonic()
        blocked = self._auth_blocked.get(subject)
        if blocked is not None:
            if blocked[0] > now:
                _note_limit(conn, blocked[1])
                raise _RateLimited(blocked[1], blocked[0] - now)
            del self._auth_blocked[subject]
        try:
            return await attempt()
        except errors.Unauthenticated:
            decision = await self.limiter.hit(f"failed-auth:{subject}", self.limits.failed_auth())
            headers = decision.headers()
            _note_limit(conn, headers)
            if not decision.allowed:
                if len(self._auth_blocked) > 100_000:
                    self._auth_blocked = {k: v for k, v in self._auth_blocked.items() if v[0] > now}
                self._auth_blocked[subject] = (now + decision.retry_after, headers)
                raise _RateLimited(headers, decision.retry_after) from None
            raise

    async def limit_ip(self, conn: HTTPConnection, rate_class: int) -> None:
        """Take the per-IP limit of ``rate_class`` for an unauthenticated request."""
        subject = self.ip_subject(self.client_ip_of(conn))
        await self._limit(subject, rate_class, 0, conn)

    async def respond(
        self, request: Request, inner: Callable[[str], Awaitable[Response]]
    ) -> Response:
        """Run ``inner(request_id)``, turning every failure into problem+json, and add the
        request id and the limit's headers to whatever comes out."""
        request_id = request_id_of(request)
        started = time.perf_counter()
        try:
            response = await inner(request_id)
        except errors.RailguardError as exc:
            response = problem_from_error(exc, request_id)
        except grpc.aio.AioRpcError as exc:
            response = problem_from_rpc(exc, request_id)
            if response.status_code >= 500:
                _log.warning(
                    "upstream failed",
                    extra={"grpc_code": exc.code().name, "request_id": request_id},
                )
        except Exception:
            _log.exception("unhandled error", extra={"request_id": request_id})
            response = problem_response(500, "INTERNAL", "internal error", request_id)
        for name, value in getattr(request.state, "limit_headers", {}).items():
            response.headers.setdefault(name, value)
        response.headers["X-Request-Id"] = request_id
        status = response.status_code
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

    async def whoami(self, request: Request) -> Response:
        """The principal behind the presented token or key, its workspace, scopes and limits."""
        return await self.respond(request, lambda _: self._whoami(request))

    async def _whoami(self, request: Request) -> Response:
        request.state.operation = "whoami"
        await self.limit_ip(request, access_pb2.RATE_LIMIT_CLASS_READ)
        client_ip = self.client_ip_of(request)

        async def parse() -> tuple[str, str]:
            return self.credentials(request)

        kind, secret = await self.counted(request, client_ip, parse)
        plan = 0
        if kind == "jwt":
            claims = await self.counted(
                request, client_ip, lambda: self._jwt_principal(secret, client_ip)
            )
            body: dict[str, object] = {
                "type": "user",
                "userId": claims.user_id,
                "sessionId": claims.session_id,
                "aal": claims.aal,
                "amr": list(claims.amr),
            }
        elif kind == "key" and self.api_keys is not None:
            api_keys = self.api_keys
            principal = await self.counted(
                request,
                client_ip,
                lambda: api_keys.introspect(secret, client_ip, request.headers.get("origin", "")),
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
            await self.counted(request, client_ip, _no_credentials)
            raise AssertionError("unreachable")  # pragma: no cover
        body["clientIp"] = client_ip
        body["rateLimits"] = [
            {"class": name, "quota": limit.quota, "windowSeconds": int(limit.window)}
            for name, limit in self.limits.all_for_plan(plan).items()
        ]
        return Response(json.dumps(body), media_type="application/json")

    async def _jwt_principal(self, token: str, client_ip: str) -> Principal:
        return await self.principal_for("jwt", token, client_ip, "", "")

    async def handle(self, request: Request) -> Response:
        return await self.respond(request, lambda request_id: self._handle(request, request_id))

    async def _preflight(self, request: Request, request_id: str) -> Response:
        """Answer a CORS preflight, only for an origin that some active API key allows.

        A preflight carries no credentials, so it cannot know which key will follow; it vouches
        only for origins at least one active key allows (the set is at most ``ORIGINS_TTL`` old),
        and the actual request is still refused unless its own key allows the origin. Anything
        else is a 403 without CORS headers, so the browser never sends the request.
        """
        await self.limit_ip(request, _PREFLIGHT_CLASS)
        origin = request.headers.get("origin", "")
        wanted = request.headers.get("access-control-request-method", "")
        route, other_verb = self.routes.resolve(wanted, request.url.path)
        if not origin or route is None:
            cross = "no such route for a cross-origin request"
            return self._no_route(request, request_id, other_verb, cross, cross)
        if self.origins is None or not await self.origins.allows(origin):
            return problem_response(
                403,
                "ORIGIN_NOT_ALLOWED",
                "no API key allows requests from this origin",
                request_id,
                headers={"Vary": "Origin"},
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

    def _no_route(
        self, request: Request, request_id: str, other_verb: bool, wrong_verb: str, missing: str
    ) -> Response:
        """No route for this request: 405 with ``Allow`` where the path has other verbs, else 404."""
        if other_verb:
            return problem_response(
                405,
                "METHOD_NOT_ALLOWED",
                wrong_verb,
                request_id,
                headers={"Allow": ", ".join(self.routes.allowed_verbs(request.url.path))},
            )
        return problem_response(404, "ROUTE_NOT_FOUND", missing, request_id)

    async def _handle(self, request: Request, request_id: str) -> Response:  # noqa: C901 - the edge's documented order of checks, one step each
        if request.method == "OPTIONS":
            return await self._preflight(request, request_id)
        route, other_verb = self.routes.resolve(request.method, request.url.path)
        if route is None:
            await self.limit_ip(request, access_pb2.RATE_LIMIT_CLASS_UNSPECIFIED)
            return self._no_route(
                request, request_id, other_verb, "method not allowed for this path", "no such route"
            )
        request.state.operation = route.info.operation_id
        rule = route.info.rule
        assert rule is not None  # the route table holds only ruled RPCs
        client_ip = self.client_ip_of(request)
        # 1. a limit before anything else: per IP for a public route, else authenticate first
        #    (a failed authentication counts against the IP)
        principal = None
        if rule.public:
            await self._limit(self.ip_subject(client_ip), rule.rate_limit, 0, request)
        else:

            async def authenticate() -> Principal:
                kind, secret = self.credentials(request)
                origin = request.headers.get("origin", "")
                return await self.principal_for(kind, secret, client_ip, origin, rule.scope)

            principal = await self.counted(request, client_ip, authenticate)
        # 2. the path: names are checked before any lookup is made for them
        path_params = route.match(request.url.path) or {}
        for variable, value in path_params.items():
            if not all(ID_SEGMENT.fullmatch(segment) for segment in value.split("/")):
                raise errors.InvalidArgument.field(
                    variable, "is not a valid resource name", reason="INVALID_NAME"
                )
        workspace_id = next(
            (w for v in path_params.values() if (w := workspace_id_from_name(v))), None
        )
        # 3. the access rule, then the principal's own limit
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
            await self._limit(who, rule.rate_limit, view.plan if view else 0, request)
        # 4. only now the body: read (bounded), then parsed (depth-bounded)
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
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        facts = HttpFacts(request.headers, request.headers.get("content-type", ""), len(body))
        message = build_request(route, path_params, body, query, facts)
        kept = self._kept_answer(route.info.full_method, forwarded, message)
        rendered = kept.lookup() if kept else None
        if rendered is None:
            try:
                result = await self.upstream.invoke(
                    route.info, message, forwarded, request_id, self.config.upstream_timeout
                )
            finally:
                if request.method != "GET" and route.info.service.full_name == WORKSPACES_SERVICE:
                    # read your writes at this edge: a change this edge forwarded (even one
                    # whose answer was lost) is not answered from its cache; other edges hear it
                    # through the workspaces feed within the bound
                    self._forget_access(workspace_id)
            rendered = json.dumps(render_response(result))
            if kept:
                kept.keep(rendered)
        headers: dict[str, str] = {}
        origin = request.headers.get("origin", "")
        if origin and forwarded.is_api_key:
            # the keys service has verified this origin against the key's allowlist
            headers.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Expose-Headers": "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After",
                    "Vary": "Origin",
                }
            )
        return Response(rendered, media_type="application/json", headers=headers)

    def _kept_answer(
        self, method: str, forwarded: Principal, message: ProtoMessage
    ) -> KeptAnswer | None:
        kept = getattr(self.access, "kept", None)  # only a cache keeps answers
        if kept is None:
            return None
        result: KeptAnswer | None = kept(forwarded.user_id, forwarded.workspace_id, method, message)
        return result

    def _forget_access(self, workspace_id: str | None) -> None:
        forget = getattr(self.access, "forget", None)  # only a cache has something to forget
        if forget is not None:
            forget(workspace_id)

    async def _limit(
        self, who: str, rate_class: int, plan: int, conn: HTTPConnection | None = None
    ) -> dict[str, str]:
        limit = self.limits.limit(rate_class, plan)
        decision = await self.limiter.hit(f"{limit.name}:{who}", limit)
        headers = decision.headers()
        if conn is not None:
            _note_limit(conn, headers)
        if not decision.allowed:
            raise _RateLimited(headers, decision.retry_after)
        return headers


def _note_limit(conn: HTTPConnection, headers: dict[str, str]) -> None:
    """Remember the latest limit decision's headers for the response, whatever it turns out to be."""
    conn.state.limit_headers = headers


async def _no_credentials() -> Principal:
    raise errors.Unauthenticated("authentication required", reason="UNAUTHENTICATED")


def _printable(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable() and ord(ch) < 127)


class _RateLimited(errors.ResourceExhausted):
    def __init__(self, headers: dict[str, str], retry_after: float) -> None:
        super().__init__(
            "rate limit exceeded; retry later", reason="RATE_LIMITED", retry_after=retry_after
        )
        self.headers = headers


def build_app(  # noqa: C901 - the route table: one mount per edge route
    gateway: Gateway,
    openapi: Callable[[], dict[str, object]],
    ready: Callable[[], Awaitable[bool]],
    config: EdgeConfig,
    extra_routes: Sequence[BaseRoute] = (),
    *,
    degraded: Callable[[], Awaitable[list[str]]] | None = None,
) -> ASGIApp:
    async def dispatch(request: Request) -> Response:
        response = await gateway.handle(request)
        return response

    async def healthz(request: Request) -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        ok = await ready()
        body: dict[str, object] = {"status": "ready" if ok else "not ready"}
        if degraded is not None:
            # running on a fallback (Redis down) is still ready, and says so
            body["degraded"] = await degraded()
        return Response(
            json.dumps(body),
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    async def jwks(request: Request) -> Response:
        return await gateway.respond(request, lambda _: _jwks(request))

    async def _jwks(request: Request) -> Response:
        request.state.operation = "jwks"
        await gateway.limit_ip(request, access_pb2.RATE_LIMIT_CLASS_READ)
        if not gateway.tokens.ready:
            try:
                await gateway.tokens.refresh(force=True)
            except errors.RailguardError:
                raise errors.Unavailable(
                    "keys not available yet", reason="SERVICE_UNAVAILABLE"
                ) from None
        return Response(
            gateway.tokens.jwks_json,
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    openapi_doc = json.dumps(openapi())

    async def whoami(request: Request) -> Response:
        return await gateway.whoami(request)

    async def openapi_json(request: Request) -> Response:
        return await gateway.respond(request, lambda _: _openapi_json(request))

    async def _openapi_json(request: Request) -> Response:
        request.state.operation = "openapi"
        await gateway.limit_ip(request, access_pb2.RATE_LIMIT_CLASS_READ)
        return Response(openapi_doc, media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals (a path no route matches, e.g. one with a decoded control
        character; a verb an edge route lacks) in the edge's error contract."""
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        code = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, "BAD_REQUEST"
        )
        request_id = request_id_of(request)
        response = problem_response(
            exc.status_code, code, str(exc.detail), request_id, headers=headers
        )
        response.headers["X-Request-Id"] = request_id
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        request_id = request_id_of(request)
        _log.error("unhandled error", extra={"request_id": request_id}, exc_info=exc)
        response = problem_response(500, "INTERNAL", "internal error", request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    def get_only(
        endpoint: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """An edge route of its own: GET (and HEAD); any other verb is a 405 naming them, rather
        than falling through to the contract routes' 404."""

        async def guarded(request: Request) -> Response:
            if request.method in ("GET", "HEAD"):
                return await endpoint(request)
            request_id = request_id_of(request)
            response = problem_response(
                405,
                "METHOD_NOT_ALLOWED",
                "method not allowed for this path",
                request_id,
                headers={"Allow": "GET, HEAD"},
            )
            response.headers["X-Request-Id"] = request_id
            return response

        return guarded

    own = {
        "/healthz": healthz,
        "/readyz": readyz,
        "/.well-known/jwks.json": jwks,
        "/openapi.json": openapi_json,
        "/v1/whoami": whoami,
    }
    app = Starlette(
        routes=[
            *(
                StarletteRoute(path, get_only(endpoint), methods=[*methods, "HEAD"])
                for path, endpoint in own.items()
            ),
            *extra_routes,
            StarletteRoute("/{path:path}", dispatch, methods=methods),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    return SecurityHeaders(app, config.hsts_seconds)
