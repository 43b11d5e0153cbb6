"""A replica added by a scale-up gets traffic from clients that were already connected.

A round_robin channel only learns new addresses when it re-resolves its ``dns:///`` target,
which gRPC does when a connection ends. Servers therefore GOAWAY each connection after
``RAILGUARD_MAX_CONNECTION_AGE_SECONDS`` (300 s by default; 1 s here); without that, a pod added
by the HPA would never be dialled by the clients already running. gRPC rate-limits re-resolution
to once per 30 s, so the new replica is found within about 30 s here.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from devstack import free_port
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servicekit.clients import open_channel
from servicekit.devca import ensure_dev_pki
from servicekit.settings import load_settings
from testkit.dns import DnsServer

pytestmark = pytest.mark.timeout(120)

_CHECKS = re.compile(
    r"^railguard_rpc_requests_total\{[^}]*/grpc.health.v1.Health/Check[^}]*\} ([0-9.e+]+)$", re.M
)


def _spawn(certs: Path, host: str, port: int, metrics: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAILGUARD_CERTS_DIR": str(certs),
        "RAILGUARD_STATE_DIR": str(certs.parent),
        "RAILGUARD_LISTEN": f"{host}:{port}",
        "RAILGUARD_METRICS_LISTEN": f"{host}:{metrics}",
        "RAILGUARD_MAX_CONNECTION_AGE_SECONDS": "1",
        "RAILGUARD_LOG_LEVEL": "WARNING",
    }
    script = Path(__file__).with_name("replica.py")
    return subprocess.Popen([sys.executable, str(script)], env=env)  # noqa: S603


async def _listening(host: str, port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.5)  # let the server finish start() after the bind
        return
    raise TimeoutError(f"{host}:{port} does not listen")


async def _checks(host: str, metrics: int) -> float:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                text = (await client.get(f"http://{host}:{metrics}/metrics", timeout=2)).text
                return sum(float(v) for v in _CHECKS.findall(text))
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise TimeoutError(f"no metrics from {host}")


async def test_a_new_replica_gets_traffic_from_connected_clients(tmp_path: Path) -> None:
    certs = ensure_dev_pki(tmp_path / "certs")
    port = free_port()
    metrics = {"127.0.0.2": free_port(), "127.0.0.3": free_port()}
    replicas = []
    with DnsServer({"workspaces": ["127.0.0.2"]}) as dns:
        try:
            replicas.append(_spawn(certs, "127.0.0.2", port, metrics["127.0.0.2"]))
            # the first replica is up before the client dials: a failed first connection would
            # itself schedule a re-resolution and hide what this test is about
            await _checks("127.0.0.2", metrics["127.0.0.2"])
            await _listening("127.0.0.2", port)
            settings = load_settings("edge", {"RAILGUARD_CERTS_DIR": str(certs)})
            channel = open_channel(settings, dns.target("workspaces", port))
            stub = health_pb2_grpc.HealthStub(channel)
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True)
            # scale up: a second replica appears, and DNS (the headless Service) lists it
            replicas.append(_spawn(certs, "127.0.0.3", port, metrics["127.0.0.3"]))
            before = await _checks("127.0.0.3", metrics["127.0.0.3"])
            dns.records["workspaces"] = ["127.0.0.2", "127.0.0.3"]
            # gRPC re-resolves at most every 30 s (its DNS resolver's default), so allow 45 s
            gained, deadline = 0.0, time.monotonic() + 45
            while gained < 30 and time.monotonic() < deadline:
                for _ in range(20):
                    await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    await asyncio.sleep(0.02)
                gained = await _checks("127.0.0.3", metrics["127.0.0.3"]) - before
            await channel.close()
        finally:
            for proc in replicas:
                proc.send_signal(signal.SIGTERM)
            for proc in replicas:
                proc.wait(10)
    assert gained >= 30, f"the new replica served {gained} calls in 45 s"
