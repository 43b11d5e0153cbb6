"""The edge's audit WebSocket route, in-process (Starlette's test client) with fake upstreams."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from edge_service.app import contract_modules
from edge_service.audit_stream import LIST_AUDIT_EVENTS, PATH, AuditStreamRoute
from edge_service.client_ip import ClientIpResolver
from edge_service.gateway import EdgeConfig, Gateway, build_app
from edge_service.policy import AccessView
from edge_service.ratelimit import LimitTable, MemoryLimiter
from edge_service.routes import RouteTable
from edge_service.sessions import SessionGuard
from edge_service.tokens import AccessClaims
from railguard.access.v1 import access_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from servicekit import errors
from servicekit.access import describe_services
from servicekit.context import Principal
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():  # its httpx backend is deprecated in favour of httpx2 (not locked)
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

WS = "w1"
URL = f"/v1/workspaces/{WS}/auditEvents:stream"
ADMIN, USER = access_pb2.ROLE_ADMIN, access_pb2.ROLE_USER
KEY_OK, KEY_NO_SCOPE = "rg_test_withscope", "rg_test_noscope"


class Tokens:
    async def verify(self, token: str) -> AccessClaims:
        if not token.startswith("jwt-"):
            raise errors.Unauthenticated("bad token", reason="UNAUTHENTICATED")
        user = token.removeprefix("jwt-")
        return AccessClaims(user, f"session-of-{user}", "aal1", ("pwd",), 0)


class Keys:
    def __init__(self) -> None:
        self.origins: list[str] = []

    async def verify(self, key: str, client_ip: str, origin: str, scope: str) -> Principal:
        self.origins.append(origin)
        if origin and origin != "https://allowed.example":
            raise errors.PermissionDenied("origin not allowed", reason="ORIGIN_NOT_ALLOWED")
        if key != KEY_OK or scope != "audit:read":
            raise errors.PermissionDenied("scope missing", reason="SCOPE_MISSING")
        return Principal(user_id="admin", api_key_id="k1", workspace_id=WS, scopes=("audit:read",))

    async def introspect(self, key: str, client_ip: str, origin: str) -> Principal:
        raise AssertionError("the audit stream never introspects a key")


class Access:
    def __init__(self) -> None:
        self.roles = {"owner": access_pb2.ROLE_OWNER, "admin": ADMIN, "user": USER}

    async def resolve(self, user_id: str, workspace_id: str) -> AccessView:
        role = self.roles.get(user_id, 0) if workspace_id == WS else 0
        return AccessView(workspace_id == WS, bool(role), role, False, False, 0)


class Streams:
    """Three stored events; then nothing until cancelled (live events are tested end to end)."""

    def __init__(self) -> None:
        self.principals: list[Principal] = []

    async def open(
        self, request: ws_pb.StreamAuditEventsRequest, principal: Principal, request_id: str
    ) -> AsyncIterator[ws_pb.AuditEvent]:
        self.principals.append(principal)
        for sequence in range(request.after_sequence + 1, 4):
            yield ws_pb.AuditEvent(
                name=f"{request.parent}/auditEvents/{sequence}",
                action="member.add",
                sequence=sequence,
            )
        await asyncio.Event().wait()


class Sessions:
    """Auth's GetSessionState: every session is active but those ended here."""

    def __init__(self) -> None:
        self.ended: set[str] = set()
        self.down = False

    async def active(self, session_id: str) -> bool:
        if self.down:
            raise errors.Unavailable("auth is down", reason="DEPENDENCY_UNAVAILABLE")
        return session_id not in self.ended


class Env:
    def __init__(self) -> None:
        self.keys, self.access, self.streams = Keys(), Access(), Streams()
        self.sessions = Sessions()
        infos = describe_services(contract_modules())
        rule = next(i.rule for i in infos if i.full_method == LIST_AUDIT_EVENTS)
        assert rule is not None
        gateway = Gateway(
            RouteTable(infos),
            None,  # type: ignore[arg-type]  # no unary call is made
            Tokens(),  # type: ignore[arg-type]
            self.access,
            ClientIpResolver(),
            MemoryLimiter(),
            LimitTable(),
            self.keys,
            EdgeConfig(),
            sessions=SessionGuard(self.sessions.active, ask_ttl=0.0),
        )
        route = AuditStreamRoute(gateway, self.streams, rule, recheck=0.05, max_per_caller=2)

        async def ready() -> bool:
            return True

        app = build_app(gateway, dict, ready, EdgeConfig(), [WebSocketRoute(PATH, route.handle)])
        self.client = TestClient(app)  # type: ignore[arg-type]


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    with e.client:
        yield e


def _frames(session: Any, n: int) -> list[dict[str, Any]]:
    return [json.loads(session.receive_text()) for _ in range(n)]


def test_an_admin_with_a_bearer_header_gets_the_events_as_json(env: Env) -> None:
    with env.client.websocket_connect(URL, headers={"Authorization": "Bearer jwt-admin"}) as ws:
        assert ws.accepted_subprotocol is None
        frames = _frames(ws, 3)
    assert [f["sequence"] for f in frames] == ["1", "2", "3"]  # int64 renders as a string
    assert frames[0]["name"] == f"workspaces/{WS}/auditEvents/1"
    forwarded = env.streams.principals[0]
    assert (forwarded.user_id, forwarded.workspace_id, forwarded.role) == ("admin", WS, ADMIN)


def test_a_browser_sends_the_token_as_a_subprotocol_and_only_the_marker_is_echoed(
    env: Env,
) -> None:
    with env.client.websocket_connect(
        f"{URL}?after=2", subprotocols=["railguard.bearer", "jwt-owner"]
    ) as ws:
        assert ws.accepted_subprotocol == "railguard.bearer"
        assert [f["sequence"] for f in _frames(ws, 1)] == ["3"]


@pytest.mark.parametrize(
    ("url", "headers", "status", "code"),
    [
        (URL, {}, 401, "UNAUTHENTICATED"),
        (f"{URL}?access_token=jwt-admin", {}, 401, "UNAUTHENTICATED"),  # never from the URL
        (URL, {"Authorization": "Bearer forged"}, 401, "UNAUTHENTICATED"),
        (URL, {"Authorization": "Bearer jwt-user"}, 403, "ROLE_TOO_LOW"),
        (URL, {"Authorization": "Bearer jwt-stranger"}, 404, "NOT_FOUND"),
        (
            "/v1/workspaces/other/auditEvents:stream",
            {"Authorization": "Bearer jwt-admin"},
            404,
            "NOT_FOUND",
        ),
        (f"{URL}?after=-1", {"Authorization": "Bearer jwt-admin"}, 400, "INVALID_SEQUENCE"),
        (URL, {"Authorization": f"Bearer {KEY_NO_SCOPE}"}, 403, "SCOPE_MISSING"),
        (
            URL,
            {"Authorization": f"Bearer {KEY_OK}", "Origin": "https://evil.example"},
            403,
            "ORIGIN_NOT_ALLOWED",
        ),
        (
            URL,
            {"Authorization": "Bearer jwt-admin", "Sec-WebSocket-Protocol": "railguard.bearer, x"},
            400,
            "AMBIGUOUS_CREDENTIALS",
        ),
        (URL, {"Sec-WebSocket-Protocol": "railguard.bearer"}, 401, "UNAUTHENTICATED"),
    ],
)
def test_refused_handshakes_get_a_problem(
    env: Env, url: str, headers: dict[str, str], status: int, code: str
) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied:
        with env.client.websocket_connect(url, headers=headers):
            pass
    assert denied.value.status_code == status
    assert denied.value.json()["code"] == code
    assert denied.value.headers["X-Request-Id"]
    assert env.streams.principals == []


def test_api_keys_with_the_scope_and_an_allowed_origin_are_admitted(env: Env) -> None:
    headers = {"X-API-Key": KEY_OK, "Origin": "https://allowed.example"}
    with env.client.websocket_connect(URL, headers=headers) as ws:
        assert len(_frames(ws, 3)) == 3
    assert env.keys.origins[0] == "https://allowed.example"
    assert env.streams.principals[0].api_key_id == "k1"


def test_losing_the_role_closes_the_stream_with_a_policy_violation(env: Env) -> None:
    with env.client.websocket_connect(URL, headers={"Authorization": "Bearer jwt-admin"}) as ws:
        _frames(ws, 3)
        env.access.roles["admin"] = USER
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "ROLE_TOO_LOW")


def test_an_ended_session_is_refused_at_the_handshake(env: Env) -> None:
    env.sessions.ended.add("session-of-admin")
    with pytest.raises(WebSocketDenialResponse) as denied:
        with env.client.websocket_connect(URL, headers={"Authorization": "Bearer jwt-admin"}):
            pass
    assert (denied.value.status_code, denied.value.json()["code"]) == (401, "SESSION_REVOKED")
    assert env.streams.principals == []


def test_auth_down_at_the_handshake_is_a_503_not_a_stream(env: Env) -> None:
    env.sessions.down = True
    with pytest.raises(WebSocketDenialResponse) as denied:
        with env.client.websocket_connect(URL, headers={"Authorization": "Bearer jwt-admin"}):
            pass
    assert denied.value.status_code == 503
    assert denied.value.headers["Retry-After"] == "1"
    assert env.streams.principals == []


def test_ending_the_session_closes_the_stream_with_a_policy_violation(env: Env) -> None:
    with env.client.websocket_connect(URL, headers={"Authorization": "Bearer jwt-admin"}) as ws:
        _frames(ws, 3)
        env.sessions.ended.add("session-of-admin")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "SESSION_REVOKED")


def test_streams_per_caller_are_capped(env: Env) -> None:
    headers = {"Authorization": "Bearer jwt-admin"}
    with env.client.websocket_connect(URL, headers=headers) as a:
        _frames(a, 3)
        with env.client.websocket_connect(URL, headers=headers) as b:
            _frames(b, 3)
            with pytest.raises(WebSocketDenialResponse) as denied:
                with env.client.websocket_connect(URL, headers=headers):
                    pass
            assert denied.value.status_code == 429


def test_failed_handshake_authentications_count_against_the_ip(env: Env) -> None:
    statuses = []
    for _ in range(31):  # failed-auth: 30 a minute per client IP at scale 1
        with pytest.raises(WebSocketDenialResponse) as denied:
            with env.client.websocket_connect(URL, headers={"Authorization": "Bearer bad"}):
                pass
        statuses.append(denied.value.status_code)
    assert statuses == [401] * 30 + [429]
    assert denied.value.json()["code"] == "RATE_LIMITED"
    assert denied.value.headers["RateLimit-Policy"].startswith('"failed-auth"')
    assert int(denied.value.headers["Retry-After"]) >= 1
