"""Traces across a real RPC: the caller's span → a CLIENT span → the service's SERVER span → its
database spans, one trace id throughout, recorded by an in-memory exporter.

The workspaces service runs in-process (mTLS, a real SQLite or PostgreSQL database); the caller is
a channel opened like the edge opens its own (``servicekit.clients.open_channel``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import interceptors, tracing
from servicekit.clients import open_channel, outgoing_metadata
from servicekit.logs import JsonFormatter
from testkit import running, test_settings
from workspaces_service.__main__ import MIGRATIONS, build

GET = "railguard.workspaces.v1.WorkspacesService/GetWorkspace"
RESOLVE = "railguard.workspaces.v1.WorkspacesService/ResolveAccess"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_TRACER", provider.get_tracer("test"))  # undone afterwards
    yield exporter
    provider.shutdown()


async def test_one_trace_spans_caller_client_server_and_database(
    spans: InMemorySpanExporter, pki: Path, database_url: str
) -> None:
    settings = test_settings("workspaces", pki, database_url)
    async with running(settings, build, MIGRATIONS) as server:
        channel = open_channel(test_settings("edge", pki), f"127.0.0.1:{server.port}")
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        with tracing.tracer().start_as_current_span("caller") as root:
            await stub.ResolveAccess(
                pb.ResolveAccessRequest(user_id="u1", workspace_id="w1"),
                metadata=outgoing_metadata(),
                timeout=5,
            )
        await channel.close()
    finished = spans.get_finished_spans()
    trace_id = root.get_span_context().trace_id
    ours = [s for s in finished if s.context.trace_id == trace_id]
    client = [s for s in ours if s.kind == SpanKind.CLIENT and s.name == RESOLVE]
    server_spans = [s for s in ours if s.kind == SpanKind.SERVER and s.name == RESOLVE]
    assert len(client) == 1 and len(server_spans) == 1, [s.name for s in finished]
    assert client[0].parent is not None
    assert client[0].parent.span_id == root.get_span_context().span_id
    assert server_spans[0].parent is not None
    assert server_spans[0].parent.span_id == client[0].context.span_id  # via gRPC metadata
    assert server_spans[0].attributes is not None
    assert server_spans[0].attributes["rpc.grpc.status_code"] == "OK"
    database = [s for s in ours if s.attributes and "db.system" in s.attributes]
    assert database, "no database span in the trace"
    for span in database:
        assert span.parent is not None and span.parent.span_id == server_spans[0].context.span_id
        assert str(span.attributes["db.statement"]).split()[0].upper() in {  # type: ignore[index]
            "SELECT",
            "BEGIN",
            "INSERT",
            "UPDATE",
        }


async def test_a_failed_rpc_is_recorded_on_both_sides(
    spans: InMemorySpanExporter, pki: Path, tmp_path: Path
) -> None:
    settings = test_settings("workspaces", pki, f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    async with running(settings, build, MIGRATIONS) as server:
        channel = open_channel(test_settings("edge", pki), f"127.0.0.1:{server.port}")
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:  # no principal: refused
            await stub.GetWorkspace(pb.GetWorkspaceRequest(name="workspaces/w1"))
        await channel.close()
    code = failure.value.code().name
    codes = {
        s.kind: s.attributes["rpc.grpc.status_code"]  # type: ignore[index]
        for s in spans.get_finished_spans()
        if s.name == GET
    }
    assert code != "OK"
    assert codes == {SpanKind.CLIENT: code, SpanKind.SERVER: code}


def test_off_by_default_nothing_is_wrapped() -> None:
    assert not tracing.enabled()
    assert tracing.client_interceptors() == []

    async def behavior(request: object, ctx: object) -> object:
        return request

    assert tracing.TracingInterceptor().around("/x.Y/Z", behavior, False) is behavior
    chain = interceptors.default_interceptors("d", {})
    assert not any(isinstance(i, tracing.TracingInterceptor) for i in chain)


def test_on_the_tracing_interceptor_is_first(spans: InMemorySpanExporter) -> None:
    chain = interceptors.default_interceptors("d", {})
    assert isinstance(chain[0], tracing.TracingInterceptor)


def test_log_lines_carry_the_trace_id(spans: InMemorySpanExporter) -> None:
    formatter = JsonFormatter("test")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", (), None)
    assert "trace_id" not in json.loads(formatter.format(record))
    with tracing.tracer().start_as_current_span("work") as span:
        line = json.loads(formatter.format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
