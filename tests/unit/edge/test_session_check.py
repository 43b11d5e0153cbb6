"""The gateway checks the session of every JWT after verifying it (the verified-token memo
included): an ended session's token is refused on routes and whoami, an auth outage is a 503
with Retry-After, and API keys are never asked about (they are not sessions)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edge_service.app import contract_modules
from edge_service.client_ip import ClientIpResolver
from edge_service.gateway import EdgeConfig, Gateway, build_app
from edge_service.policy import AccessView
from edge_service.ratelimit import LimitTable, MemoryLimiter
from edge_service.routes import RouteTable
from edge_service.sessions import SessionGuard
from edge_service.tokens import TokenVerifier
from google.protobuf.message import Message
from jwt.algorithms import OKPAlgorithm
from railguard.access.v1 import access_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from servicekit import errors
from servicekit.access import RpcInfo, describe_services
from servicekit.context import Principal

ISS, AUD = "https://railguard.test", "railguard"
KEY = "rg_live_goodkey"


class Auth:
    def __init__(self) -> None:
        self.ended: set[str] = set()
        self.down = False
        self.asked: list[str] = []

    async def active(self, session_id: str) -> bool:
        self.asked.append(session_id)
        if self.down:
            raise errors.Unavailable("auth is down", reason="DEPENDENCY_UNAVAILABLE")
        return session_id not in self.ended


class Keys:
    async def verify(self, key: str, client_ip: str, origin: str, scope: str) -> Principal:
        return Principal(user_id="u1", api_key_id="k1", workspace_id="w1", scopes=(scope,))

    async def introspect(self, key: str, client_ip: str, origin: str) -> Principal:
        return Principal(user_id="u1", api_key_id="k1", workspace_id="w1", scopes=())


class Access:
    async def resolve(self, user_id: str, workspace_id: str) -> AccessView:
        return AccessView(True, True, access_pb2.ROLE_OWNER, False, False, 0)


class Upstream:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def invoke(
        self, info: RpcInfo, request: Message, principal: Principal, rid: str, deadline: float
    ) -> Message:
        self.calls.append(info.full_method)
        return ws_pb.Workspace(name="workspaces/w1")


class Env:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="k1", alg="EdDSA", use="sig")
        jwks = json.dumps({"keys": [jwk]})

        async def fetch() -> str:
            return jwks

        self.tokens = TokenVerifier(fetch, ISS, AUD)
        self.auth, self.upstream = Auth(), Upstream()
        self.gateway = Gateway(
            RouteTable(describe_services(contract_modules())),
            self.upstream,
            self.tokens,
            Access(),
            ClientIpResolver(["127.0.0.1/32"]),
            MemoryLimiter(),
            LimitTable(),
            Keys(),
            EdgeConfig(),
            sessions=SessionGuard(self.auth.active, ask_ttl=0.0),
        )

        async def ready() -> bool:
            return True

        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=build_app(self.gateway, dict, ready, EdgeConfig())  # type: ignore[arg-type]
            ),
            base_url="https://edge.test",
        )

    def token(self, session_id: str, lifetime: int = 600) -> str:
        now = int(time.time())
        claims = {
            "iss": ISS,
            "aud": AUD,
            "sub": "u1",
            "sid": session_id,
            "jti": session_id,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        return jwt.encode(
            claims, self.key, algorithm="EdDSA", headers={"kid": "k1", "typ": "at+jwt"}
        )


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    async with e.client:
        yield e


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/v1/workspaces/w1", "/v1/whoami"])
async def test_an_ended_sessions_verified_token_is_refused(env: Env, path: str) -> None:
    token = env.token("s1")
    assert (await env.client.get(path, headers=_bearer(token))).status_code == 200
    env.auth.ended.add("s1")  # the token is in the verified memo; the session check is not
    r = await env.client.get(path, headers=_bearer(token))
    assert r.status_code == 401
    assert r.json()["code"] == "SESSION_REVOKED"
    assert env.auth.asked == ["s1", "s1"]
    # nothing forwarded for the refused one (whoami forwards nothing at all)
    assert len(env.upstream.calls) == (0 if path == "/v1/whoami" else 1)


async def test_other_sessions_keep_working(env: Env) -> None:
    env.auth.ended.add("s1")
    r = await env.client.get("/v1/workspaces/w1", headers=_bearer(env.token("s2")))
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/v1/workspaces/w1", "/v1/whoami"])
async def test_auth_down_is_a_503_with_retry_after_never_an_acceptance(env: Env, path: str) -> None:
    env.auth.down = True
    r = await env.client.get(path, headers=_bearer(env.token("s1")))
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert r.json()["code"] == "SERVICE_UNAVAILABLE"
    assert env.upstream.calls == []


async def test_api_keys_are_not_sessions(env: Env) -> None:
    env.auth.down = True
    r = await env.client.get("/v1/workspaces/w1", headers={"X-API-Key": KEY})
    assert r.status_code == 200
    r = await env.client.get("/v1/whoami", headers={"X-API-Key": KEY})
    assert r.status_code == 200
    assert env.auth.asked == []


async def test_an_invalid_token_is_refused_before_any_question(env: Env) -> None:
    r = await env.client.get("/v1/whoami", headers=_bearer("not.a.token"))
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    assert env.auth.asked == []


async def test_a_token_living_longer_than_pushed_revocations_are_kept_is_asked_about(
    env: Env,
) -> None:
    env.gateway.sessions = SessionGuard(env.auth.active, live=lambda: True, retain=660)
    ok = await env.client.get("/v1/whoami", headers=_bearer(env.token("s1")))
    assert ok.status_code == 200 and env.auth.asked == []  # live: decided from the push
    env.auth.ended.add("s2")
    r = await env.client.get("/v1/whoami", headers=_bearer(env.token("s2", lifetime=3600)))
    assert (r.status_code, r.json()["code"]) == (401, "SESSION_REVOKED")
    assert env.auth.asked == ["s2"]
