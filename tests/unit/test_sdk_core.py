"""The SDK's shared core (``railguard._core``) through both shells, against an in-process edge.

``Client`` and ``AsyncClient`` only send and sleep; refresh, retry and error decisions are the
core's. Each promise is checked on both shells with the same scripted answers, so a shell that
drifts from the core fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from railguard import AsyncClient, Client, RetryPolicy
from railguard._core import AuthState, Call, Exchange
from railguard.errors import ConnectionFailed, ServiceUnavailable, Unauthenticated
from railguard.session import Tokens

Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"code": code, "detail": code.lower()}
    return httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json", **headers}
    )


def pair(access: str, refresh: str) -> dict[str, object]:
    return {"accessToken": access, "refreshToken": refresh, "expiresIn": 900}


class Edge:
    """Scripted answers per path, and every request seen."""

    def __init__(self, script: dict[str, list[httpx.Response]]) -> None:
        self.script = script
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answers = self.script[request.url.path]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def paths(self) -> list[str]:
        return [r.url.path for r in self.seen]


def _sync(edge: Handler, **kwargs: object) -> Client:
    client = Client("https://edge.test", **kwargs)  # type: ignore[arg-type]
    client._http.close()
    client._http = client._t.http = httpx.Client(
        base_url="https://edge.test", transport=httpx.MockTransport(edge)
    )
    return client


async def _async(edge: Handler, **kwargs: object) -> AsyncClient:
    client = AsyncClient("https://edge.test", **kwargs)  # type: ignore[arg-type]
    await client._http.aclose()
    client._http = client._t.http = httpx.AsyncClient(
        base_url="https://edge.test", transport=httpx.MockTransport(edge)
    )
    return client


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    waits: list[float] = []

    async def fake_async_sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr("railguard.client.time.sleep", waits.append)
    monkeypatch.setattr("railguard.aio.asyncio.sleep", fake_async_sleep)
    yield waits


def _refused_then_ok() -> Edge:
    return Edge(
        {
            "/v1/users/me": [problem(401, "TOKEN_EXPIRED"), httpx.Response(200, json={"e": 1})],
            "/v1/auth:refresh": [httpx.Response(200, json={"tokens": pair("new", "r2")})],
        }
    )


def _check_refused_then_ok(edge: Edge, told: list[Tokens], body: object) -> None:
    assert body == {"e": 1}
    assert edge.paths() == ["/v1/users/me", "/v1/auth:refresh", "/v1/users/me"]
    first, refresh, again = edge.seen
    assert first.headers["Authorization"] == "Bearer old"
    assert again.headers["Authorization"] == "Bearer new"
    assert "authorization" not in refresh.headers  # the refresh call carries no access token
    assert json.loads(refresh.content) == {"refreshToken": "r1"}
    # one logical call, one X-Request-Id across the refresh and the resend
    assert first.headers["X-Request-Id"] == again.headers["X-Request-Id"]
    assert [t.access_token for t in told] == ["new"]


def test_sync_refused_token_is_refreshed_once_and_the_call_resent() -> None:
    edge, told = _refused_then_ok(), []
    tokens = Tokens("old", "r1")
    with _sync(edge, tokens=tokens, on_tokens=told.append) as rg:
        body = rg.users.me()
    _check_refused_then_ok(edge, told, body)


async def test_async_refused_token_is_refreshed_once_and_the_call_resent() -> None:
    edge, told = _refused_then_ok(), []
    tokens = Tokens("old", "r1")
    async with await _async(edge, tokens=tokens, on_tokens=told.append) as rg:
        body = await rg.users.me()
    _check_refused_then_ok(edge, told, body)


def _always_refused() -> Edge:
    return Edge(
        {
            "/v1/users/me": [problem(401, "TOKEN_INVALID")],
            "/v1/auth:refresh": [httpx.Response(200, json={"tokens": pair("new", "r2")})],
        }
    )


def test_sync_a_second_refusal_is_raised_not_refreshed_again() -> None:
    edge = _always_refused()
    with _sync(edge, tokens=Tokens("old", "r1")) as rg, pytest.raises(Unauthenticated) as err:
        rg.users.me()
    assert err.value.code == "TOKEN_INVALID"
    assert edge.paths() == ["/v1/users/me", "/v1/auth:refresh", "/v1/users/me"]


async def test_async_a_second_refusal_is_raised_not_refreshed_again() -> None:
    edge = _always_refused()
    async with await _async(edge, tokens=Tokens("old", "r1")) as rg:
        with pytest.raises(Unauthenticated) as err:
            await rg.users.me()
    assert err.value.code == "TOKEN_INVALID"
    assert edge.paths() == ["/v1/users/me", "/v1/auth:refresh", "/v1/users/me"]


def test_an_api_key_is_never_refreshed() -> None:
    edge = _always_refused()
    with _sync(edge, api_key="rg_test_k") as rg, pytest.raises(Unauthenticated):
        rg.users.me()
    assert edge.paths() == ["/v1/users/me"]
    assert edge.seen[0].headers["X-API-Key"] == "rg_test_k"


def _busy() -> Edge:
    return Edge(
        {
            "/v1/users/me": [
                problem(503, "UNAVAILABLE", **{"Retry-After": "2"}),
                httpx.Response(200, json={"e": 2}),
            ],
            "/v1/workspaces": [problem(503, "UNAVAILABLE", **{"Retry-After": "2"})],
        }
    )


def test_sync_retry_after_is_honoured_for_a_get_not_for_a_plain_post(
    no_sleep: list[float],
) -> None:
    edge = _busy()
    with _sync(edge, api_key="k") as rg:
        assert rg.users.me() == {"e": 2}
        assert no_sleep == [2.0]
        with pytest.raises(ServiceUnavailable):
            rg._t.send(Call("POST", "/v1/workspaces", body={}))
    assert no_sleep == [2.0]  # the POST without a request id was not repeated
    assert edge.paths() == ["/v1/users/me", "/v1/users/me", "/v1/workspaces"]


async def test_async_retry_after_is_honoured_for_a_get_not_for_a_plain_post(
    no_sleep: list[float],
) -> None:
    edge = _busy()
    async with await _async(edge, api_key="k") as rg:
        assert await rg.users.me() == {"e": 2}
        assert no_sleep == [2.0]
        with pytest.raises(ServiceUnavailable):
            await rg._t.send(Call("POST", "/v1/workspaces", body={}))
    assert no_sleep == [2.0]
    assert edge.paths() == ["/v1/users/me", "/v1/users/me", "/v1/workspaces"]


def _two_pages() -> Edge:
    return Edge(
        {
            "/v1/workspaces": [
                httpx.Response(200, json={"workspaces": [{"n": 1}], "nextPageToken": "p2"}),
                httpx.Response(200, json={"workspaces": [{"n": 2}]}),
            ]
        }
    )


def test_sync_pages_follow_the_next_page_token() -> None:
    edge = _two_pages()
    with _sync(edge, api_key="k") as rg:
        assert list(rg.workspaces.list()) == [{"n": 1}, {"n": 2}]
    assert [r.url.params.get("pageToken") for r in edge.seen] == [None, "p2"]


async def test_async_pages_follow_the_next_page_token() -> None:
    edge = _two_pages()
    async with await _async(edge, api_key="k") as rg:
        assert [w async for w in rg.workspaces.list()] == [{"n": 1}, {"n": 2}]
    assert [r.url.params.get("pageToken") for r in edge.seen] == [None, "p2"]


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused")


def test_sync_a_transport_failure_is_connection_failed() -> None:
    with _sync(_down, api_key="k") as rg, pytest.raises(ConnectionFailed, match="ConnectError"):
        rg.users.me()


async def test_async_a_transport_failure_is_connection_failed() -> None:
    async with await _async(_down, api_key="k") as rg:
        with pytest.raises(ConnectionFailed, match="ConnectError: refused"):
            await rg.users.me()


def test_exchange_gives_up_when_retry_after_exceeds_the_bound() -> None:
    exchange = Exchange(Call("GET", "/x"), RetryPolicy(max_wait=5), AuthState("k", None, None))
    with pytest.raises(ServiceUnavailable):
        exchange.answer(problem(503, "UNAVAILABLE", **{"Retry-After": "60"}))


def test_exchange_refreshes_only_a_user_session_with_a_refresh_token() -> None:
    answer = problem(401, "TOKEN_EXPIRED")
    without = Exchange(Call("GET", "/x"), RetryPolicy(), AuthState(None, Tokens("a"), None))
    with pytest.raises(Unauthenticated):
        without.answer(answer)
    unauthenticated_call = Exchange(
        Call("GET", "/x", authenticated=False),
        RetryPolicy(),
        AuthState(None, Tokens("a", "r"), None),
    )
    with pytest.raises(Unauthenticated):
        unauthenticated_call.answer(answer)
    session = Exchange(Call("GET", "/x"), RetryPolicy(), AuthState(None, Tokens("a", "r"), None))
    assert session.answer(answer).refresh
    with pytest.raises(Unauthenticated):
        session.answer(answer)
