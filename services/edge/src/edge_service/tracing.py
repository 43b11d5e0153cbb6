"""A SERVER span per HTTP request, child of the caller's W3C ``traceparent`` when it sent one.

The span is current while the gateway works, so the gRPC calls it makes (``servicekit.tracing``'s
client interceptors) are its children and carry the trace on to the services. Installed only
when tracing is on (``servicekit.tracing.enabled()``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpTracing"]


class HttpTracing:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from servicekit.tracing import tracer

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        path = scope.get("path", "")
        with tracer().start_as_current_span(
            f"{method} {path}",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": path,
                "url.scheme": "https",
                "network.protocol.name": scope["type"],
            },
        ) as span:

            async def send_recording(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR, str(status)))
                await send(message)

            await self.app(scope, receive, send_recording)
            state = scope.get("state") or {}
            operation = state.get("operation") if isinstance(state, dict) else None
            if operation:
                span.update_name(f"{method} {operation}")
                span.set_attribute("rpc.operation", operation)
