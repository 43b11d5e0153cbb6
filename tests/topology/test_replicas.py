"""Two replicas of every backend behind two edges, balanced client-side, surviving a kill.

The production topology on one machine: each backend runs twice (127.0.0.2 and 127.0.0.3, one
port, one shared PostgreSQL database per service), and every process reaches its peers through
``dns://<test DNS>/<service>:<port>``, a name that resolves to both replicas as a headless
Service does in Kubernetes. Two edges take the traffic.

1. Spread: each replica serves at least 30 % of its service's calls (read from each replica's
   own /metrics), which a pick_first channel pinned to one replica cannot do.
2. Kill: one replica of each backend is SIGKILLed under load. Every answer is a 200 or a 503
   with Retry-After (a client can retry); none is a 500. Every write that was acknowledged can
   be read back afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from devstack import MALLOC_ENV, free_port
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servicekit.devca import ensure_dev_pki
from servicekit.kms import MasterKey
from servicekit.tls import TlsFiles, client_credentials
from testkit import fresh_database, postgres_admin_url
from testkit.dns import DnsServer

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(420)]

BACKENDS = ("auth", "workspaces", "keys", "credentials")
REPLICAS = ("127.0.0.2", "127.0.0.3")
PASSWORD = "correct horse battery staple"


@dataclass
class Topology:
    state: Path
    dns: DnsServer
    databases: dict[str, str]
    ports: dict[str, int] = field(default_factory=lambda: {s: free_port() for s in BACKENDS})
    metrics: dict[tuple[str, str], int] = field(default_factory=dict)
    edges: list[int] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def certs(self) -> Path:
        return self.state / "certs"

    def env(self, service: str, listen: str, metrics: str) -> dict[str, str]:
        peppers = "1:" + "A" * 43 + "="
        return {
            **os.environ,
            "RAILGUARD_STATE_DIR": str(self.state),  # shared: replicas share the local keyrings
            "RAILGUARD_CERTS_DIR": str(self.certs),
            "RAILGUARD_LISTEN": listen,
            "RAILGUARD_METRICS_LISTEN": metrics,
            **{f"RAILGUARD_{p.upper()}_ADDR": self.dns.target(p, self.ports[p]) for p in BACKENDS},
            **({"RAILGUARD_DATABASE_URL": self.databases[service]} if service in BACKENDS else {}),
            "RAILGUARD_KEYS_PEPPERS": peppers,
            # a shared database needs shared key material: one keyring per service
            "RAILGUARD_KMS_URL": f"local://{self.state}/{service}.shared-keyring"
            f"?master_key_file={self.state}/shared.master-key&key={service}",
            "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": "B" * 43 + "=",
            "RAILGUARD_EDGE_RATE_LIMIT_SCALE": "1000",
            "RAILGUARD_EDGE_WORKERS": "1",  # one process per edge replica (metrics per process)
            "RAILGUARD_LOG_LEVEL": "WARNING",
            "RAILGUARD_GRACE_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
            **MALLOC_ENV,
        }

    def spawn(self, label: str, module: str, env: dict[str, str]) -> None:
        log = open(self.state / f"{label}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[label] = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def start(self) -> None:
        ensure_dev_pki(self.certs)
        MasterKey.generate().write_file(self.state / "shared.master-key")
        # one replica of each first (it migrates and creates the shared keyrings), then the other
        for host in REPLICAS:
            for svc in BACKENDS:
                port = free_port()
                self.metrics[(svc, host)] = port
                env = self.env(svc, f"{host}:{self.ports[svc]}", f"{host}:{port}")
                self.spawn(f"{svc}@{host}", f"{svc}_service", env)
            self.wait(lambda h=host: all(self.grpc_healthy(s, h) for s in BACKENDS), 120)
        for index in range(2):
            port, metrics = free_port(), free_port()
            self.edges.append(port)
            self.metrics[("edge", str(index))] = metrics
            env = self.env("edge", f"127.0.0.1:{port}", f"127.0.0.1:{metrics}")
            self.spawn(f"edge{index}", "edge_service", env)
        self.wait(lambda: all(self.edge_ready(p) for p in self.edges), 90)

    def wait(self, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for label, proc in self.processes.items():
                if proc.poll() is not None:
                    log = (self.state / f"{label}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{label} exited with {proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError("the topology did not become healthy")
            time.sleep(0.3)

    def grpc_healthy(self, svc: str, host: str) -> bool:
        files = TlsFiles(self.certs / "edge.crt", self.certs / "edge.key", self.certs / "ca.crt")
        channel = grpc.secure_channel(
            f"{host}:{self.ports[svc]}",
            client_credentials(files),
            options=[("grpc.ssl_target_name_override", svc)],  # the replica's certificate name
        )
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False
        finally:
            channel.close()

    def edge_ready(self, port: int) -> bool:
        context = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        try:
            response = httpx.get(f"https://localhost:{port}/readyz", verify=context, timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def kill(self, label: str) -> None:
        self.processes[label].send_signal(signal.SIGKILL)
        self.processes[label].wait(10)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_SERIES = re.compile(r"^railguard_rpc_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.M)


def served(metrics_text: str) -> float:
    """The Railguard RPCs a replica served (health checks and reflection left out)."""
    total = 0.0
    for labels, value in _SERIES.findall(metrics_text):
        if 'method="/grpc.' not in labels:
            total += float(value)
    return total


async def scrape(client: httpx.AsyncClient, host: str, port: int) -> float:
    response = await client.get(f"http://{host}:{port}/metrics", timeout=5)
    return served(response.text)


@pytest.fixture
async def topology(tmp_path: Path) -> AsyncIterator[Topology]:
    if not postgres_admin_url():
        pytest.skip("RAILGUARD_TEST_POSTGRES_URL not set")
    async with contextlib.AsyncExitStack() as stack:
        databases = {
            svc: await stack.enter_async_context(fresh_database("postgres", tmp_path, f"rep{svc}"))
            for svc in BACKENDS
        }
        records = {svc: REPLICAS for svc in BACKENDS}
        with DnsServer(records) as dns:
            topo = Topology(tmp_path / "state", dns, databases)
            topo.state.mkdir()
            try:
                await asyncio.to_thread(topo.start)
                yield topo
            finally:
                await asyncio.to_thread(topo.stop)


@contextlib.asynccontextmanager
async def clients(topo: Topology) -> AsyncIterator[list[httpx.AsyncClient]]:
    context = ssl.create_default_context(cafile=str(topo.certs / "ca.crt"))
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"https://localhost:{p}", verify=context, timeout=30)
            )
            for p in topo.edges
        ]


async def _call(
    client: httpx.AsyncClient, method: str, path: str, token: str = "", **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    return await client.request(method, path, headers=headers, **kw)


@dataclass
class Fixture:
    token: str
    workspace: str
    key: str


async def _prepare(edge: httpx.AsyncClient) -> Fixture:
    email = f"r{secrets.token_hex(4)}@example.com"
    r = await _call(edge, "POST", "/v1/users", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    r = await _call(edge, "POST", "/v1/auth:login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["tokens"]["accessToken"]
    r = await _call(edge, "POST", "/v1/workspaces", token, json={"displayName": "Replicas"})
    assert r.status_code == 200, r.text
    workspace = r.json()["name"]
    body = {"displayName": "ci", "environment": "ENVIRONMENT_LIVE", "scopes": ["workspaces:read"]}
    r = await _call(edge, "POST", f"/v1/{workspace}/apiKeys", token, json=body)
    assert r.status_code == 200, r.text
    return Fixture(token, workspace, r.json()["key"])


async def _round(edge: httpx.AsyncClient, fx: Fixture, n: int) -> list[tuple[str, httpx.Response]]:
    """One mixed round touching every backend; the writes' names are kept to read back later."""
    value = "sk-proj-abc" + secrets.token_hex(20) + "xyz9"
    calls = [
        ("read", _call(edge, "GET", "/v1/users/me", fx.token)),  # auth
        ("read", _call(edge, "GET", f"/v1/{fx.workspace}", fx.token)),  # workspaces
        ("read", _call(edge, "GET", f"/v1/{fx.workspace}/apiKeys", fx.token)),  # keys
        ("read", _call(edge, "GET", f"/v1/{fx.workspace}/credentials", fx.token)),  # credentials
        ("read", _call(edge, "GET", f"/v1/{fx.workspace}", headers={"X-API-Key": fx.key})),
        (
            "write",
            _call(
                edge,
                "POST",
                f"/v1/{fx.workspace}/credentials",
                fx.token,
                json={"displayName": f"c{n}", "provider": "openai", "value": value},
            ),
        ),
        (
            "write",
            _call(
                edge,
                "POST",
                f"/v1/{fx.workspace}/apiKeys",
                fx.token,
                json={
                    "displayName": f"k{n}",
                    "environment": "ENVIRONMENT_TEST",
                    "scopes": ["workspaces:read"],
                },
            ),
        ),
        ("write", _call(edge, "POST", "/v1/workspaces", fx.token, json={"displayName": f"w{n}"})),
    ]
    kinds = [k for k, _ in calls]
    responses = await asyncio.gather(*(c for _, c in calls))
    return list(zip(kinds, responses, strict=True))


def _written_name(response: httpx.Response) -> str:
    body = response.json()
    return str(body.get("apiKey", body).get("name"))


async def test_replicas_share_the_load_and_survive_losing_one(topology: Topology) -> None:
    async with clients(topology) as edges, httpx.AsyncClient() as plain:
        fx = await _prepare(edges[0])
        before = {
            (svc, host): await scrape(plain, host, topology.metrics[(svc, host)])
            for svc in BACKENDS
            for host in REPLICAS
        }

        # 1. spread: 40 rounds, alternating edges
        for n in range(40):
            results = await _round(edges[n % 2], fx, n)
            assert all(r.status_code == 200 for _, r in results), [
                (r.status_code, r.text[:300]) for _, r in results if r.status_code != 200
            ]
        shares: dict[str, dict[str, float]] = {}
        for svc in BACKENDS:
            counts = {
                host: await scrape(plain, host, topology.metrics[(svc, host)]) - before[(svc, host)]
                for host in REPLICAS
            }
            total = sum(counts.values())
            shares[svc] = {h: c / total for h, c in counts.items()}
        print("replica shares:", shares)  # noqa: T201 - the measured figures, in the test log
        for svc, by_host in shares.items():
            assert min(by_host.values()) >= 0.30, f"{svc} is not balanced: {by_host}"

        # 2. kill one replica of every backend under load
        outcomes: Counter[str] = Counter()
        bad: list[str] = []
        acknowledged: list[str] = []
        stop = asyncio.Event()

        async def worker(index: int) -> None:
            n = 1000 * (index + 1)
            while not stop.is_set():
                n += 1
                for kind, r in await _round(edges[n % 2], fx, n):
                    outcomes[f"{kind} {r.status_code}"] += 1
                    if r.status_code == 200:
                        if kind == "write":
                            acknowledged.append(_written_name(r))
                    elif r.status_code != 503 or "retry-after" not in r.headers:
                        bad.append(f"{r.status_code} {r.headers.get('retry-after')} {r.text[:200]}")

        workers = [asyncio.create_task(worker(i)) for i in range(3)]
        await asyncio.sleep(2)
        for svc in BACKENDS:
            await asyncio.to_thread(topology.kill, f"{svc}@{REPLICAS[0]}")
        await asyncio.sleep(6)
        stop.set()
        await asyncio.gather(*workers)
        print("outcomes under the kill:", dict(outcomes))  # noqa: T201
        assert bad == [], bad[:10]
        assert sum(v for k, v in outcomes.items() if k.endswith(" 200")) > 0

        # after the kill everything still works through the survivors
        results = await _round(edges[0], fx, 99999)
        assert all(r.status_code == 200 for _, r in results), [r.text for _, r in results]

        # nothing acknowledged is lost
        assert acknowledged
        for name in acknowledged:
            r = await _call(edges[1], "GET", f"/v1/{name}", fx.token)
            assert r.status_code == 200, (name, r.text)
