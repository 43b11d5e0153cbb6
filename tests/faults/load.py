"""A bounded, mixed HTTPS load on the edge that records every answer (loopback only)."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True, slots=True)
class Outcome:
    op: str
    started: float
    ended: float
    status: int
    code: str
    retry_after: str | None


@dataclass
class Client:
    http: httpx.AsyncClient

    async def call(
        self,
        method: str,
        path: str,
        token: str = "",
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return await self.http.request(method, path, json=json, headers=h)

    async def user(self) -> tuple[str, str]:
        """A new signed-up user: (email, access token)."""
        email = f"f{secrets.token_hex(5)}@example.com"
        r = await self.call("POST", "/v1/users", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = await self.call("POST", "/v1/auth:login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return email, str(r.json()["tokens"]["accessToken"])


def client_for(certs: Path, port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"https://localhost:{port}",
        verify=ssl.create_default_context(cafile=str(certs / "ca.crt")),
        timeout=15,
    )


@dataclass
class Load:
    """``workers`` loops of reads, writes, logins and API-key calls until ``stop`` is set."""

    client: Client
    email: str
    token: str
    workspace: str
    api_key: str
    workers: int = 3
    pause: float = 0.02
    max_writes: int = 60
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # workspaces the edge said it created

    async def _one(self, op: str) -> None:
        started = time.monotonic()
        if op == "me":
            r = await self.client.call("GET", "/v1/users/me", self.token)
        elif op == "list":
            r = await self.client.call("GET", "/v1/workspaces", self.token)
        elif op == "key":
            r = await self.client.call(
                "GET", f"/v1/{self.workspace}", headers={"X-API-Key": self.api_key}
            )
        elif op == "login":
            r = await self.client.call(
                "POST", "/v1/auth:login", json={"email": self.email, "password": PASSWORD}
            )
        else:
            r = await self.client.call(
                "POST", "/v1/workspaces", self.token, json={"displayName": "Fault"}
            )
            if r.status_code == 200:
                self.acknowledged.append(str(r.json()["name"]))
        code = ""
        if r.status_code != 200 and r.headers.get("content-type", "").endswith("json"):
            code = str(r.json().get("code", ""))
        self.outcomes.append(
            Outcome(
                op, started, time.monotonic(), r.status_code, code, r.headers.get("retry-after")
            )
        )

    async def _worker(self, index: int, stop: asyncio.Event) -> None:
        ops = ["me", "list", "key", "create", "me", "list", "key", "list"]
        step = index
        while not stop.is_set():
            op = ops[step % len(ops)]
            step += 1
            if op == "create" and len(self.acknowledged) >= self.max_writes:
                op = "list"
            if step % 24 == 0:
                op = "login"  # argon2 is costly on 2 cores: a login now and then
            await self._one(op)
            await asyncio.sleep(self.pause)

    async def run_until(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._worker(i, stop) for i in range(self.workers)))

    def since(self, t: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.started >= t]

    def summary(self, outcomes: list[Outcome] | None = None) -> dict[str, int]:
        return dict(Counter(f"{o.status} {o.code}".strip() for o in (outcomes or self.outcomes)))
