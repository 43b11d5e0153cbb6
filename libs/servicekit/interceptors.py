"""The server interceptor every service runs: one concern per stage, in one ordered list.

1. ``RequestContextInterceptor``: request id, timing and one structured log line per call.
2. ``ErrorMappingInterceptor``: domain errors → status + ErrorInfo; a dependency outage (lost
   database connection, pool timeout; see ``servicekit.failures``) → UNAVAILABLE with RetryInfo
   and one log line; anything else → INTERNAL with a generic message (traceback to the log only).
3. ``CallerIdentityInterceptor``: the mTLS client certificate's identity (the service in its
   SPIFFE ID, ``servicekit.spiffe``) must be allowed by the RPC's access rule; the principal is
   read only from callers allowed to assert one.

The server runs them as **one** gRPC interceptor (:func:`server_interceptors`): the stages'
wrappers are composed once per method, in this order (tracing, when on, outermost), so a call
passes one interceptor instead of a chain of four, each with its own continuation.
"""

from __future__ import annotations

import abc
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from railguard.access.v1 import access_pb2

from servicekit import context, errors
from servicekit.access import RpcInfo
from servicekit.failures import unavailable_from
from servicekit.metrics import Metrics
from servicekit.spiffe import DEFAULT_TRUST_DOMAIN, service_of_uris
from servicekit.status import status_of

__all__ = [
    "CallerIdentityInterceptor",
    "ErrorMappingInterceptor",
    "OnePassInterceptor",
    "RequestContextInterceptor",
    "default_interceptors",
    "server_interceptors",
]

_log = logging.getLogger("servicekit.rpc")

if TYPE_CHECKING:  # the grpc stubs are generic; the runtime classes are not
    Ctx = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Ctx = grpc.aio.ServicerContext
    Handler = grpc.RpcMethodHandler

Behavior = Callable[[Any, Any], Any]  # the stubs type sync and aio contexts differently


def _wrap(handler: Handler, around: Callable[[Behavior], Behavior]) -> Handler:
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            around(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            around(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # streaming requests are not part of any Railguard contract


class _Interceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        # wrap each method's handler once, not on every call
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(
            handler,
            lambda behavior: self.around(method, behavior, handler.unary_stream is not None),
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    @abc.abstractmethod
    def around(self, method: str, behavior: Behavior, streaming: bool) -> Behavior:
        """Wrap one method's behaviour; each subclass is one concern."""


class RequestContextInterceptor(_Interceptor):
    """Open the call's context (request id from metadata or new), log and count the outcome."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        super().__init__()
        self.metrics = metrics

    def around(self, method: str, behavior: Behavior, streaming: bool) -> Behavior:
        def enter(ctx: Ctx) -> tuple[context.CallContext, Any]:
            md = dict(ctx.invocation_metadata() or ())
            rid = str(md.get(context.REQUEST_ID_METADATA_KEY, ""))[:128] or context.new_request_id()
            call = context.CallContext(request_id=rid, method=method)
            return call, context._set(call)

        def finish(call: context.CallContext, ctx: Ctx, started: float) -> None:
            code = ctx.code()
            name = (
                code.name
                if isinstance(code, grpc.StatusCode)
                else "OK"
                if code in (None, 0)
                else str(code)
            )
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.rpc(method, name, elapsed)
            _log.info(
                "rpc",
                extra={
                    "method": method,
                    "code": name,
                    "caller": call.caller,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

        if streaming:

            async def stream(request: Any, ctx: Ctx) -> AsyncIterator[Any]:
                call, token = enter(ctx)
                started = time.perf_counter()
                try:
                    async for item in behavior(request, ctx):
                        yield item
                finally:
                    finish(call, ctx, started)
                    context._reset(token)

            return stream

        async def unary(request: Any, ctx: Ctx) -> Any:
            call, token = enter(ctx)
            started = time.perf_counter()
            try:
                return await behavior(request, ctx)
            finally:
                finish(call, ctx, started)
                context._reset(token)

        return unary


class ErrorMappingInterceptor(_Interceptor):
    """Map domain errors to gRPC status; never let an exception's text reach the caller."""

    def __init__(self, domain: str) -> None:
        super().__init__()
        self.domain = domain

    async def _abort(self, exc: Exception, ctx: Ctx) -> None:
        if isinstance(exc, errors.RailguardError):
            await ctx.abort_with_status(status_of(exc, self.domain))
        outage = unavailable_from(exc)
        if outage is not None:
            # a dependency outage is expected and retryable: one line, no traceback storm
            _log.warning(
                "dependency unavailable",
                extra={"reason": outage.reason, "error": type(exc).__name__},
            )
            await ctx.abort_with_status(status_of(outage, self.domain))
        _log.error("unhandled error", exc_info=exc)
        await ctx.abort(grpc.StatusCode.INTERNAL, "internal error")

    def around(self, method: str, behavior: Behavior, streaming: bool) -> Behavior:
        if streaming:

            async def stream(request: Any, ctx: Ctx) -> AsyncIterator[Any]:
                try:
                    async for item in behavior(request, ctx):
                        yield item
                except Exception as exc:  # noqa: BLE001 - this is the one place that catches all
                    await self._abort(exc, ctx)

            return stream

        async def unary(request: Any, ctx: Ctx) -> Any:
            try:
                return await behavior(request, ctx)
            except Exception as exc:  # noqa: BLE001 - this is the one place that catches all
                await self._abort(exc, ctx)

        return unary


_INFRASTRUCTURE = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/")


def _peer_identity(ctx: Ctx, trust_domain: str) -> str:
    """The service named by the client certificate's SPIFFE ID (never its CN); "" if none.

    ``peer_uri`` is every URI SAN of the verified client certificate, as gRPC extracted them
    (none without a client certificate): the same values a parse of ``x509_pem_cert`` finds.
    """
    uris = (ctx.auth_context() or {}).get("peer_uri") or ()
    if not uris:
        return ""
    return _service_of(tuple(uris), trust_domain)


@functools.lru_cache(maxsize=256)
def _service_of(uris: tuple[bytes, ...], trust_domain: str) -> str:
    """:func:`service_of_uris` of a verified certificate's URI SANs, worked out once per distinct
    set (a few peers, each presenting the same certificate on every call)."""
    try:
        texts = [uri.decode("ascii") for uri in uris]
    except UnicodeDecodeError:
        return ""
    return service_of_uris(texts, trust_domain) or ""


class CallerIdentityInterceptor(_Interceptor):
    """Admit a call only from an mTLS identity the RPC's access rule allows.

    Internal RPCs name their callers in the contract. Every other RPC is reached only through a
    principal asserter (the edge), which also forwards the resolved principal.
    """

    def __init__(
        self,
        rules: Mapping[str, RpcInfo],
        asserters: Collection[str] = ("edge",),
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
    ) -> None:
        super().__init__()
        self.rules = rules
        self.asserters = frozenset(asserters)
        self.trust_domain = trust_domain

    def _admit(self, method: str, ctx: Ctx) -> None:
        call = context.current()
        call.caller = _peer_identity(ctx, self.trust_domain)
        info = self.rules.get(method)
        if info is None and method.startswith(_INFRASTRUCTURE) and call.caller:
            return  # health and reflection: any peer that passed mutual TLS
        if info is None or info.rule is None:
            raise errors.PermissionDenied("this method has no access rule", reason="NO_ACCESS_RULE")
        rule = info.rule
        allowed = set(rule.internal_callers) if rule.internal_callers else self.asserters
        if not call.caller or call.caller not in allowed:
            raise errors.PermissionDenied(
                "caller identity not allowed", reason="CALLER_NOT_ALLOWED"
            )
        md = dict(ctx.invocation_metadata() or ())
        raw = md.get(context.PRINCIPAL_METADATA_KEY)
        if raw:
            principal = access_pb2.Principal()
            principal.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
            call.principal = context.Principal.from_proto(principal)
        if rule.internal_callers or rule.public:
            return
        if not call.principal.user_id:
            raise errors.Unauthenticated("authentication required", reason="UNAUTHENTICATED")
        if rule.min_role != access_pb2.ROLE_UNSPECIFIED:
            # defence in depth: the edge checked this already
            call.principal.require_role(rule.min_role)

    def around(self, method: str, behavior: Behavior, streaming: bool) -> Behavior:
        if streaming:

            async def stream(request: Any, ctx: Ctx) -> AsyncIterator[Any]:
                self._admit(method, ctx)
                async for item in behavior(request, ctx):
                    yield item

            return stream

        async def unary(request: Any, ctx: Ctx) -> Any:
            self._admit(method, ctx)
            return await behavior(request, ctx)

        return unary


class OnePassInterceptor(_Interceptor):
    """The stages (outermost first) folded into one interceptor: same behaviour, one pass."""

    def __init__(self, stages: Sequence[_Interceptor]) -> None:
        super().__init__()
        self.stages = tuple(stages)

    def around(self, method: str, behavior: Behavior, streaming: bool) -> Behavior:
        for stage in reversed(self.stages):
            behavior = stage.around(method, behavior, streaming)
        return behavior


def default_interceptors(
    domain: str,
    rules: Mapping[str, RpcInfo],
    asserters: Collection[str] = ("edge",),
    metrics: Metrics | None = None,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
) -> list[_Interceptor]:
    """The stages, outermost first (the server runs them folded: :func:`server_interceptors`)."""
    from servicekit import tracing  # imports this module

    return [
        *([tracing.TracingInterceptor()] if tracing.enabled() else []),
        RequestContextInterceptor(metrics),
        ErrorMappingInterceptor(domain),
        CallerIdentityInterceptor(rules, asserters, trust_domain),
    ]


def server_interceptors(stages: Sequence[_Interceptor]) -> list[grpc.aio.ServerInterceptor]:
    """What a server is built with: ``stages`` (:func:`default_interceptors`) as one interceptor."""
    return [OnePassInterceptor(stages)]
