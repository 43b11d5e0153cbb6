"""The real suite for the benchmarks: ``devstack.Stack`` on free ports, seeded with one user.

Every service runs as its own ``python -m <name>_service`` process, exactly as ``make run`` and
the end-to-end tests start them. The seed goes through the edge over HTTPS like a user would:
sign up, log in, create a workspace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from devstack import Stack, StackPorts
from railguard.access.v1 import access_pb2
from servicekit.clients import outgoing_metadata
from servicekit.context import Principal

__all__ = [
    "KEYS_PEPPERS",
    "PASSWORD",
    "POSTGRES_ADMIN",
    "BenchStack",
    "Seed",
    "bench_stack",
    "create_api_key",
    "database_kind",
    "databases",
    "edge_client",
    "postgres",
]

PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark user's password
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# One pepper per run, shared by the keys service and the benchmark that seeds its table.
KEYS_PEPPERS = "1:" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True, slots=True)
class Seed:
    email: str
    user_id: str
    access_token: str
    workspace_id: str

    def principal_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """What the edge forwards for this user acting in their workspace (they are its Owner)."""
        principal = Principal(
            user_id=self.user_id,
            workspace_id=self.workspace_id,
            role=access_pb2.ROLE_OWNER,
            client_ip="127.0.0.1",
        )
        return tuple(outgoing_metadata(principal, "bench"))


@dataclass(slots=True)
class BenchStack:
    stack: Stack
    seed: Seed
    database: str
    database_urls: dict[str, str]

    @property
    def certs(self) -> Path:
        return self.stack.certs

    def pids(self, *, without: tuple[str, ...] = ()) -> dict[str, int]:
        """Every process of the stack by label, an edge's workers as ``edge.w0``, ``edge.w1``...

        With ``RAILGUARD_EDGE_WORKERS`` > 1 an edge is a supervisor and its workers do the work,
        so the CPU per request counts them. ``without`` leaves out those labels (and workers).
        """
        found = {}
        for label, proc in self.stack.processes.items():
            if label in without:
                continue
            found[label] = proc.pid
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            with contextlib.suppress(OSError):
                for index, pid in enumerate(sorted(int(p) for p in children.read_text().split())):
                    found[f"{label}.w{index}"] = pid
        return found


def database_kind(requested: str) -> str:
    """``sqlite``, ``postgres``, or for ``auto`` PostgreSQL when it answers on 127.0.0.1:5432."""
    if requested != "auto":
        return requested
    try:
        asyncio.run(_postgres_ping())
    except (TimeoutError, OSError, ImportError):
        return "sqlite"
    return "postgres"


async def _postgres_ping() -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=2)
    await conn.close()


async def postgres(statements: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def databases(kind: str, services: tuple[str, ...]) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {}  # the Stack's default: one SQLite file per service in the state folder
        return
    names = {s: f"rg_bench_{s}_{secrets.token_hex(4)}" for s in services}
    asyncio.run(postgres([f'CREATE DATABASE "{n}"' for n in names.values()]))
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield {s: f"{base}/{n}" for s, n in names.items()}
    finally:
        asyncio.run(
            postgres([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values()])
        )


def edge_client(stack: Stack, port: int | None = None) -> httpx.Client:
    """An HTTPS client of one edge (the first by default), trusting the stack's dev CA."""
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    base = f"https://localhost:{port or stack.ports.edge}"
    return httpx.Client(base_url=base, verify=context, timeout=30)


def create_api_key(stack: Stack, seed: Seed, scopes: tuple[str, ...]) -> tuple[str, str]:
    """A new live key in the seed's workspace, made over HTTPS: (the key, its resource name)."""
    body = {"displayName": "bench", "environment": "ENVIRONMENT_LIVE", "scopes": list(scopes)}
    with edge_client(stack) as client:
        response = client.post(
            f"/v1/workspaces/{seed.workspace_id}/apiKeys",
            json=body,
            headers={"Authorization": f"Bearer {seed.access_token}"},
        )
        response.raise_for_status()
        created = response.json()
    return str(created["key"]), str(created["apiKey"]["name"])


def _seed(stack: Stack) -> Seed:
    email = f"bench-{secrets.token_hex(4)}@example.com"
    with edge_client(stack) as client:

        def send(method: str, path: str, token: str = "", **kw: object) -> dict[str, object]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
            response.raise_for_status()
            body: dict[str, object] = response.json()
            return body

        send("POST", "/v1/users", json={"email": email, "password": PASSWORD})
        tokens = send("POST", "/v1/auth:login", json={"email": email, "password": PASSWORD})
        token = str(tokens["tokens"]["accessToken"])  # type: ignore[index]
        me = send("GET", "/v1/users/me", token)
        workspace = send("POST", "/v1/workspaces", token, json={"displayName": "Benchmark"})
    return Seed(email, str(me["id"]), token, str(workspace["name"]).split("/")[1])


@contextlib.contextmanager
def bench_stack(
    state: Path,
    services: tuple[str, ...],
    database: str,
    log_level: str = "INFO",
    *,
    edges: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[BenchStack]:
    """Start the suite (plus ``edges`` edges) in ``state``, seed it, and stop it afterwards."""
    shutil.rmtree(state, ignore_errors=True)
    with databases(database, services) as urls:
        stack = Stack(
            state,
            ports=StackPorts.free(),
            services=services,
            env={
                # Limits stay on (the limiter runs per request) but scaled so one user is never
                # refused.
                "RAILGUARD_EDGE_RATE_LIMIT_SCALE": "1000000",
                "RAILGUARD_LOG_LEVEL": log_level,
                # required by the keys service on PostgreSQL; harmless on SQLite
                "RAILGUARD_KEYS_PEPPERS": KEYS_PEPPERS,
                **(env or {}),
            },
            database_urls=urls,
            edges=edges,
            edge_workers=None,  # the edge's default: one worker process per CPU
        )
        stack.start(timeout=90)
        try:
            yield BenchStack(stack, _seed(stack), database, dict(urls))
        finally:
            stack.stop()
