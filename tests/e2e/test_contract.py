"""The published contract against the real suite over HTTPS: the served /openapi.json is valid
OpenAPI, a client generated from it (openapi-python-client, at test time) walks the README
journey, a caller's request id is kept end to end, and one trace spans edge and services.

The stack exports its spans over OTLP/gRPC to a collector this module runs.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from devstack import Stack
from openapi_spec_validator import validate
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from .conftest import PASSWORD, Api, _stack, running_stack
from .test_audit_stream import connect

ROOT = Path(__file__).resolve().parents[2]
SERVER, CLIENT = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver: keeps (service.name, span) pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, trace_pb2.Span]] = []

    def Export(  # noqa: N802 - the OTLP service's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((service, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    sink = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield sink, port
    server.stop(0)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, collector: tuple[Collector, int]
) -> Iterator[Stack]:
    env = {
        "RAILGUARD_LOG_LEVEL": "INFO",  # one line per RPC, with its request id
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector[1]}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    with running_stack(_stack(tmp_path_factory.mktemp("contract"), env=env)) as s:
        yield s


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    verify = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    with httpx.Client(base_url=stack.url, verify=verify, timeout=30) as c:
        yield c


def _user(http: httpx.Client) -> str:
    email = f"c{secrets.token_hex(4)}@example.com"
    assert http.post("/v1/users", json={"email": email, "password": PASSWORD}).status_code == 200
    login = http.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return str(login.json()["tokens"]["accessToken"])


# --- the document and a client generated from it ------------------------------------------------


def test_the_served_document_is_valid_openapi(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    validate(doc)
    assert "/v1/whoami" in doc["paths"]


def _generate_client(doc: dict[str, Any], folder: Path) -> str:
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(doc))
    config = folder / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    package = f"rg_generated_{secrets.token_hex(3)}"
    out = folder / "gen"
    out.mkdir()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(out / package),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out))
    return package


def test_a_generated_client_walks_the_readme_journey(
    http: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    package = _generate_client(http.get("/openapi.json").json(), tmp_path)
    try:
        with contextlib.ExitStack() as clients:
            _journey(package, stack, clients)
    finally:
        sys.path.remove(str(tmp_path / "gen"))


def _journey(package: str, stack: Stack, clients: contextlib.ExitStack) -> None:
    def api(module: str) -> ModuleType:
        return importlib.import_module(f"{package}.api.{module}")

    models = importlib.import_module(f"{package}.models")
    client_module = importlib.import_module(f"{package}.client")
    ca = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    anonymous = clients.enter_context(client_module.Client(base_url=stack.url, verify_ssl=ca))

    email = f"g{secrets.token_hex(4)}@example.com"
    signed = api("auth_service.auth_service_sign_up").sync_detailed(
        client=anonymous, body=models.AuthServiceSignUpBody(email=email, password=PASSWORD)
    )
    assert signed.status_code == 200, signed.content
    login = api("auth_service.auth_service_login").sync(
        client=anonymous, body=models.AuthServiceLoginBody(email=email, password=PASSWORD)
    )
    assert isinstance(login, models.RailguardAuthV1LoginResponse), login
    user = clients.enter_context(
        client_module.AuthenticatedClient(
            base_url=stack.url, verify_ssl=ca, token=login.tokens.access_token
        )
    )

    workspace = api("workspaces_service.workspaces_service_create_workspace").sync(
        client=user, body=models.RailguardWorkspacesV1WorkspaceInput(display_name="Acme")
    )
    assert isinstance(workspace, models.RailguardWorkspacesV1Workspace), workspace
    assert re.fullmatch(r"workspaces/[A-Za-z0-9_-]+", workspace.name)
    workspace_id = workspace.name.split("/")[1]

    created = api("keys_service.keys_service_create_api_key").sync(
        workspace_id,
        client=user,
        body=models.RailguardKeysV1ApiKeyInput(
            display_name="ci",
            environment=models.RailguardKeysV1ApiKeyInputEnvironment("ENVIRONMENT_LIVE"),
            scopes=["workspaces:read", "audit:read"],
            allowed_cidrs=["127.0.0.0/8", "::1/128"],
        ),
        request_id=f"create-{secrets.token_hex(4)}",
    )
    assert isinstance(created, models.RailguardKeysV1CreateApiKeyResponse), created
    assert created.key.startswith("rg_live_")
    assert created.api_key.environment.value == "ENVIRONMENT_LIVE"
    keyed = clients.enter_context(
        client_module.AuthenticatedClient(
            base_url=stack.url,
            verify_ssl=ca,
            token=created.key,
            prefix="",
            auth_header_name="X-API-Key",
        )
    )

    read = api("workspaces_service.workspaces_service_get_workspace").sync(
        workspace_id, client=keyed
    )
    assert isinstance(read, models.RailguardWorkspacesV1Workspace), read
    assert read.name == workspace.name
    me = api("edge.edge_who_am_i").sync(client=keyed)
    assert isinstance(me, models.EdgeWhoAmIResponse200), me
    assert me.workspace == workspace.name

    # the audit log: maps are objects (metadata), int64 sequence numbers are strings
    list_events = api("workspaces_service.workspaces_service_list_audit_events")
    deadline = time.monotonic() + 15
    while True:
        page = list_events.sync(workspace_id, client=user, page_size=10)
        assert isinstance(page, models.RailguardWorkspacesV1ListAuditEventsResponse), page
        if page.audit_events or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert page.audit_events, "no audit event was listed"
    for event in page.audit_events:
        assert event.name.startswith(workspace.name + "/auditEvents/")
        assert int(event.sequence) >= 1
    with_key = list_events.sync(workspace_id, client=keyed)
    assert isinstance(with_key, models.RailguardWorkspacesV1ListAuditEventsResponse), with_key

    refused = api("workspaces_service.workspaces_service_get_workspace").sync("nope", client=user)
    assert isinstance(refused, models.Problem) and refused.status == 404, refused


def test_the_stated_display_name_bound_is_the_services(http: httpx.Client) -> None:
    token = _user(http)
    auth = {"Authorization": f"Bearer {token}"}
    at_bound = http.post("/v1/workspaces", json={"displayName": "x" * 100}, headers=auth)
    assert at_bound.status_code == 200, at_bound.text
    past = http.post("/v1/workspaces", json={"displayName": "x" * 101}, headers=auth)
    assert past.status_code == 400 and past.json()["code"] == "INVALID_DISPLAY_NAME"


# --- request ids --------------------------------------------------------------------------------


def test_a_well_formed_request_id_is_kept_end_to_end(http: httpx.Client, stack: Stack) -> None:
    token = _user(http)
    rid = f"e2e-{secrets.token_hex(4)}.trace:1"
    ok = http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}", "X-Request-Id": rid})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == rid
    bad = http.get(
        "/v1/workspaces/not!valid",
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": rid},
    )
    assert bad.status_code == 400
    assert bad.headers["x-request-id"] == rid and bad.json()["request_id"] == rid
    who = http.get("/v1/whoami", headers={"Authorization": f"Bearer {token}", "X-Request-Id": rid})
    assert who.headers["x-request-id"] == rid
    # the auth service logged GetCurrentUser under the caller's id
    deadline = time.monotonic() + 10
    while rid not in (stack.state / "auth.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [
        json.loads(line)
        for line in (stack.state / "auth.log").read_text().splitlines()
        if rid in line
    ]
    assert any(line.get("msg") == "rpc" and line["request_id"] == rid for line in lines), lines


@pytest.mark.parametrize("offered", ["has space", "a" * 129, "semi;colon", ""])
def test_an_ill_formed_request_id_is_replaced(http: httpx.Client, offered: str) -> None:
    response = http.get("/v1/users/me", headers={"X-Request-Id": offered})
    assert response.status_code == 401
    generated = response.headers["x-request-id"]
    assert generated != offered and re.fullmatch(r"[0-9a-f]{24}", generated)
    assert response.json()["request_id"] == generated


# --- traces -------------------------------------------------------------------------------------


def test_one_trace_spans_the_edge_and_the_services(
    http: httpx.Client, collector: tuple[Collector, int]
) -> None:
    token = _user(http)
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    response = http.post(
        "/v1/workspaces",
        json={"displayName": "Traced"},
        headers={
            "Authorization": f"Bearer {token}",
            "traceparent": f"00-{trace_id}-{parent_id}-01",
        },
    )
    assert response.status_code == 200, response.text
    sink = collector[0]
    method = "railguard.workspaces.v1.WorkspacesService/CreateWorkspace"

    def ours() -> list[tuple[str, trace_pb2.Span]]:
        return [(svc, s) for svc, s in list(sink.spans) if s.trace_id.hex() == trace_id]

    def found() -> bool:
        names = {(svc, s.kind, s.name) for svc, s in ours()}
        has_db = any(
            svc == "railguard-workspaces" and any(a.key == "db.system" for a in s.attributes)
            for svc, s in ours()
        )
        return (
            has_db
            and {
                ("railguard-edge", CLIENT, method),
                ("railguard-workspaces", SERVER, method),
            }
            <= names
        )

    deadline = time.monotonic() + 20
    while not found() and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = ours()
    assert found(), sorted((svc, s.name) for svc, s in spans)
    http_span = next(s for svc, s in spans if svc == "railguard-edge" and s.kind == SERVER)
    assert http_span.parent_span_id.hex() == parent_id  # the caller's traceparent
    edge_rpc = next(s for svc, s in spans if svc == "railguard-edge" and s.name == method)
    assert edge_rpc.parent_span_id == http_span.span_id
    served = next(s for svc, s in spans if svc == "railguard-workspaces" and s.name == method)
    assert served.parent_span_id == edge_rpc.span_id  # across gRPC metadata
    database = [
        s
        for svc, s in spans
        if svc == "railguard-workspaces" and any(a.key == "db.system" for a in s.attributes)
    ]
    assert all(s.parent_span_id == served.span_id for s in database)


# --- the WSS audit stream, as documented, with tracing on ---------------------------------------


async def test_the_audit_stream_opens_with_101_and_a_plain_get_gets_426(
    api: Api, stack: Stack
) -> None:
    _, token, _ = await api.user()
    status, workspace, _ = await api.call(
        "POST", "/v1/workspaces", token, json={"displayName": "S"}
    )
    assert status == 200, workspace
    stream = await connect(stack, workspace["name"], headers={"Authorization": f"Bearer {token}"})
    assert stream.status == 101
    try:
        assert (await stream.text())["action"] == "workspace.create"
    finally:
        await stream.close()
    status, problem, headers = await api.call(
        "GET", f"/v1/{workspace['name']}/auditEvents:stream", token
    )
    assert status == 426 and problem["code"] == "UPGRADE_REQUIRED"
    assert headers["upgrade"] == "websocket" and problem["request_id"] == headers["x-request-id"]
