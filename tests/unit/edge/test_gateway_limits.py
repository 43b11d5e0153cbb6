"""The gateway's order of checks, in-process with fake upstreams: failed authentications are
limited per client IP (and then cost no lookup at all), a preflight vouches only for origins some
key allows, and every limited answer carries the RateLimit headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from edge_service.app import contract_modules
from edge_service.client_ip import ClientIpResolver
from edge_service.gateway import EdgeConfig, Gateway, build_app
from edge_service.policy import AccessView
from edge_service.ratelimit import LimitTable, MemoryLimiter
from edge_service.routes import RouteTable
from edge_service.sessions import SessionGuard
from edge_service.tokens import AccessClaims
from google.protobuf.message import Message
from railguard.access.v1 import access_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from servicekit import errors
from servicekit.access import RpcInfo, describe_services
from servicekit.context import Principal
from testkit.fakes import FixedAccess

ALLOWED = "https://app.example"


class Tokens:
    ready = True
    jwks_json = "{}"

    async def verify(self, token: str) -> AccessClaims:
        if token != "jwt-good":
            raise errors.Unauthenticated("bad token", reason="TOKEN_INVALID")
        return AccessClaims("u1", "s1", "aal1", ("pwd",), 0)


class Keys:
    def __init__(self) -> None:
        self.lookups = 0

    async def verify(self, key: str, client_ip: str, origin: str, scope: str) -> Principal:
        self.lookups += 1
        raise errors.Unauthenticated("unknown key", reason="KEY_NOT_FOUND")

    async def introspect(self, key: str, client_ip: str, origin: str) -> Principal:
        self.lookups += 1
        raise errors.Unauthenticated("unknown key", reason="KEY_NOT_FOUND")


class Upstream:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def invoke(
        self, info: RpcInfo, request: Message, principal: Principal, rid: str, deadline: float
    ) -> Message:
        self.calls.append(info.full_method)
        return ws_pb.Workspace(name="workspaces/w1")


async def active(session_id: str) -> bool:
    return True


class Origins:
    async def allows(self, origin: str) -> bool:
        return origin == ALLOWED


class Env:
    def __init__(self, origins: Origins | None) -> None:
        self.keys, self.upstream = Keys(), Upstream()
        infos = describe_services(contract_modules())
        self.gateway = Gateway(
            RouteTable(infos),
            self.upstream,
            Tokens(),  # type: ignore[arg-type]
            FixedAccess(AccessView(True, True, access_pb2.ROLE_OWNER, False, False, 0)),
            ClientIpResolver(["127.0.0.1/32"]),
            MemoryLimiter(),
            LimitTable(scale=0.1),  # failed-auth: 3 a minute; auth class: 3 a minute
            self.keys,
            EdgeConfig(),
            sessions=SessionGuard(active),
            origins=origins,
        )

        async def ready() -> bool:
            return True

        app = build_app(self.gateway, dict, ready, EdgeConfig())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="https://edge.test",
        )


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env(Origins())
    async with e.client:
        yield e


def _from(ip: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, **headers}


async def test_failed_key_authentications_are_limited_then_cost_no_lookup(env: Env) -> None:
    answers = []
    for _ in range(6):
        r = await env.client.get(
            "/v1/workspaces/w1", headers=_from("198.51.100.1", **{"X-API-Key": "rg_live_x"})
        )
        answers.append(r.status_code)
        assert r.headers["ratelimit-policy"].startswith('"failed-auth";q=3;'), r.headers
    assert answers == [401, 401, 401, 429, 429, 429]
    assert env.keys.lookups == 4, "once the budget is spent, a key is refused unexamined"
    assert env.upstream.calls == []
    # a valid token from that IP is refused too until the budget refills; another IP is not
    r = await env.client.get("/v1/workspaces/w1", headers=_from("198.51.100.1"))
    assert r.status_code == 429
    r = await env.client.get(
        "/v1/workspaces/w1", headers=_from("198.51.100.2", Authorization="Bearer jwt-good")
    )
    assert r.status_code == 200 and "ratelimit" in r.headers


async def test_whoami_failures_count_against_the_ip(env: Env) -> None:
    statuses = []
    for i in range(4):
        ip = f"2001:db8:1:1::{i + 1}"  # four addresses of one /64
        r = await env.client.get("/v1/whoami", headers=_from(ip, Authorization="Bearer nope"))
        statuses.append(r.status_code)
    assert statuses == [401, 401, 401, 429], "two addresses of one /64 share a budget"


async def test_a_public_route_is_limited_before_its_body_is_read(env: Env) -> None:
    statuses = []
    for _ in range(4):
        r = await env.client.post(
            "/v1/users",
            content=b"[" * 5000,
            headers=_from("198.51.100.3", **{"Content-Type": "application/json"}),
        )
        statuses.append((r.status_code, r.json()["code"]))
        assert r.headers["ratelimit"].startswith('"auth-p1";r=')
    assert statuses == [(400, "MALFORMED_JSON")] * 3 + [(429, "RATE_LIMITED")]


def _preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "GET"}


async def test_preflight_answers_only_for_an_allowed_origin(env: Env) -> None:
    r = await env.client.options("/v1/workspaces/w1", headers=_preflight(ALLOWED))
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ALLOWED
    r = await env.client.options("/v1/workspaces/w1", headers=_preflight("http://evil.example"))
    assert (r.status_code, r.json()["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert r.headers["content-type"] == "application/problem+json"
    assert not [h for h in r.headers if h.startswith("access-control-")]


async def test_without_an_origin_set_no_preflight_is_approved() -> None:
    e = Env(None)
    async with e.client:
        r = await e.client.options("/v1/workspaces/w1", headers=_preflight(ALLOWED))
    assert r.status_code == 403


async def test_405_names_the_allowed_verbs(env: Env) -> None:
    r = await env.client.put("/v1/workspaces")
    assert r.status_code == 405
    assert {"GET", "POST"} <= {v.strip() for v in r.headers["allow"].split(",")}
    r = await env.client.post("/healthz")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")
    assert r.headers["content-type"] == "application/problem+json"


async def test_malformed_and_missing_credentials_count_as_failures(env: Env) -> None:
    statuses = []
    for headers in ({"Authorization": "Basic abc"}, {}, {"Authorization": "Bearer "}, {}):
        r = await env.client.get("/v1/workspaces/w1", headers=_from("198.51.100.9", **headers))
        statuses.append(r.status_code)
    assert statuses == [401, 401, 401, 429]
