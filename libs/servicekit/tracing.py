"""OpenTelemetry traces across the suite: one span per HTTP request, per RPC (both sides) and per
database call, joined by W3C ``traceparent`` in HTTP headers and gRPC metadata.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then nothing is imported from OpenTelemetry,
no exporter runs, and every hook below returns its input unchanged, so a request pays one
boolean test. On, spans are batched and exported over OTLP/gRPC (``http://`` endpoints are
plaintext, ``https://`` use TLS), each process as service ``railguard-<name>``.

Tests install their own provider (an in-memory exporter) with :func:`install`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from servicekit.interceptors import Behavior, Ctx, _Interceptor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from servicekit.settings import Settings

__all__ = [
    "TracingInterceptor",
    "client_interceptors",
    "configure_tracing",
    "current_trace_id",
    "enabled",
    "install",
    "instrument_engine",
    "tracer",
]

_TRACER: Tracer | None = None


def enabled() -> bool:
    """Whether this process records spans."""
    return _TRACER is not None


def tracer() -> Tracer:
    assert _TRACER is not None, "tracing is off"
    return _TRACER


def install(provider: TracerProvider) -> None:
    """Record spans through ``provider`` from now on (channels and servers built afterwards)."""
    global _TRACER
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    _TRACER = provider.get_tracer("railguard")


def current_trace_id() -> str:
    """The trace id of the current span as 32 hex digits, or "" (none, or tracing off)."""
    if not enabled():
        return ""
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def configure_tracing(settings: Settings) -> Callable[[], Awaitable[None]] | None:
    """Export over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; the flush-on-stop hook."""
    if not settings.otel_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otel_endpoint
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"railguard-{settings.service_name}"})
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)

    async def shutdown() -> None:
        provider.shutdown()  # flushes what is batched

    return shutdown


# --- gRPC, server side --------------------------------------------------------------------------


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _code_name(ctx: Ctx) -> str:
    code = ctx.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "OK" if code in (None, 0) else str(code)


class TracingInterceptor(_Interceptor):
    """A SERVER span per RPC, child of the caller's ``traceparent``; a no-op when tracing is off."""

    def around(self, method: str, behavior: Behavior, streaming: bool) -> Behavior:
        if not enabled():
            return behavior
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode

        name = method.lstrip("/")
        attributes = _rpc_attributes(method)

        def finish(span: Any, ctx: Ctx) -> None:
            code = _code_name(ctx)
            span.set_attribute("rpc.grpc.status_code", code)
            if code not in ("OK", "NOT_FOUND", "ALREADY_EXISTS", "INVALID_ARGUMENT"):
                span.set_status(Status(StatusCode.ERROR, code))

        def parent(ctx: Ctx) -> Any:
            carrier = {k: v for k, v in ctx.invocation_metadata() or () if isinstance(v, str)}
            return propagate.extract(carrier)

        if streaming:

            async def stream(request: Any, ctx: Ctx) -> AsyncIterator[Any]:
                with tracer().start_as_current_span(
                    name, context=parent(ctx), kind=SpanKind.SERVER, attributes=attributes
                ) as span:
                    try:
                        async for item in behavior(request, ctx):
                            yield item
                    finally:
                        finish(span, ctx)

            return stream

        async def unary(request: Any, ctx: Ctx) -> Any:
            with tracer().start_as_current_span(
                name, context=parent(ctx), kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                try:
                    return await behavior(request, ctx)
                finally:
                    finish(span, ctx)

        return unary


# --- gRPC, client side --------------------------------------------------------------------------


def _with_traceparent(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata = [*(details.metadata or ()), *carrier.items()]
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        metadata,  # type: ignore[arg-type]
        details.credentials,
        details.wait_for_ready,
    )


def _method_name(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    text = method.decode() if isinstance(method, bytes) else str(method)
    return text.lstrip("/")


def _client_span(details: grpc.aio.ClientCallDetails) -> Any:
    """The CLIENT span of one outgoing call, named after its method."""
    from opentelemetry.trace import SpanKind

    name = _method_name(details)
    return tracer().start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=_rpc_attributes(name)
    )


class _UnaryClient(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        from opentelemetry.trace import Status, StatusCode

        with _client_span(client_call_details) as span:
            call = await continuation(_with_traceparent(client_call_details), request)
            try:
                await call  # the span lasts until the answer, whatever it is
                span.set_attribute("rpc.grpc.status_code", "OK")
            except grpc.aio.AioRpcError as err:
                span.set_attribute("rpc.grpc.status_code", err.code().name)
                span.set_status(Status(StatusCode.ERROR, err.code().name))
            return call  # awaiting it again gives the caller the same answer or error


class _StreamClient(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        # a stream may last hours: the span records its opening, the server span its life
        with _client_span(client_call_details):
            return await continuation(_with_traceparent(client_call_details), request)


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a channel: CLIENT spans and ``traceparent`` in metadata; none when off."""
    if not enabled():
        return []
    return [_UnaryClient(), _StreamClient()]


# --- the database -------------------------------------------------------------------------------


def instrument_engine(engine: AsyncEngine) -> None:
    """A CLIENT span per statement (its verb as the name, the SQL text without parameters)."""
    if not enabled():
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from sqlalchemy import event

    system = engine.dialect.name
    database = engine.url.database or ""

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = tracer().start_span(
            f"{verb} {database}".strip() if system != "sqlite" else verb,
            kind=SpanKind.CLIENT,
            attributes={"db.system": system, "db.statement": statement[:2000]},
        )
        conn.info.setdefault("_rg_spans", []).append(span)

    def after(conn: Any, *_: Any) -> None:
        spans = conn.info.get("_rg_spans")
        if spans:
            spans.pop().end()

    def failed(context: Any) -> None:
        spans = context.connection.info.get("_rg_spans") if context.connection else None
        if spans:
            span = spans.pop()
            span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
            span.end()

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    event.listen(sync, "handle_error", failed)
