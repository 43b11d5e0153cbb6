"""The whole suite as separate processes, driven over HTTPS like a user would.

One stack per test module (processes are slow to start); SQLite by default, and a PostgreSQL
stack for the journey tests when RAILGUARD_TEST_POSTGRES_URL is set (required in CI).
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from devstack import Stack, StackPorts

E2E_SERVICES = ("auth", "workspaces", "keys", "credentials")
PASSWORD = "correct horse battery staple"


@dataclass
class Api:
    """A thin HTTPS client that returns (status, json body, headers)."""

    client: httpx.AsyncClient

    async def call(
        self,
        method: str,
        path: str,
        token: str = "",
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, httpx.Headers]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        response = await self.client.request(method, path, json=json, content=content, headers=h)
        body = response.json() if response.content else None
        return response.status_code, body, response.headers

    async def sign_up(self, email: str | None = None) -> str:
        email = email or f"u{secrets.token_hex(4)}@example.com"
        status, body, _ = await self.call(
            "POST", "/v1/users", json={"email": email, "password": PASSWORD}
        )
        assert status == 200, body
        return email

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        status, body, _ = await self.call(
            "POST", "/v1/auth:login", json={"email": email, "password": password}
        )
        assert status == 200, body
        return dict(body["tokens"])

    async def user(self) -> tuple[str, str, dict[str, Any]]:
        """A fresh signed-up, logged-in user: (email, access token, tokens)."""
        email = await self.sign_up()
        tokens = await self.login(email)
        return email, tokens["accessToken"], tokens


def _stack(tmp: Path, database_urls: dict[str, str] | None = None, **kw: Any) -> Stack:
    return Stack(
        tmp,
        ports=StackPorts.free(),
        services=E2E_SERVICES,
        env={
            "RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100",
            "RAILGUARD_LOG_LEVEL": "WARNING",
            **kw.pop("env", {}),
        },
        database_urls=database_urls or {},
        **kw,
    )


@contextlib.contextmanager
def running_stack(stack: Stack) -> Iterator[Stack]:
    stack.start(timeout=90)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_stack(tmp_path_factory.mktemp("stack"))) as s:
        yield s


@contextlib.asynccontextmanager
async def api_for(stack: Stack, port: int | None = None) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(
        base_url=f"https://localhost:{port or stack.ports.edge}",
        verify=ssl.create_default_context(cafile=str(stack.certs / "ca.crt")),
        timeout=30,
    ) as client:
        yield Api(client)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with api_for(stack) as a:
        yield a
