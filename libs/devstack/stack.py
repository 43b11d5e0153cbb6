"""Start, health-check and stop the suite's processes."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servicekit.devca import ensure_dev_pki
from servicekit.tls import TlsFiles, client_credentials

from devstack.ports import free_port

__all__ = ["MALLOC_ENV", "SERVICES", "SERVICE_ENV", "Stack", "StackPorts", "free_port"]

SERVICES = ("auth", "workspaces", "keys", "credentials")

# glibc tuning, the same as the container image's (deploy/docker): fewer per-thread arenas, and
# a fixed mmap threshold, so argon2's 19 MiB block goes back to the OS when freed (a dynamic
# threshold keeps it in the heap: measured 168 MB vs 89 MB after 12 hashes).
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}
# auth alone, as its Deployment (deploy/base/auth.yaml): transparent huge pages for mmapped blocks
# (glibc >= 2.35), so each fresh argon2 block costs about 270 page faults instead of 4 865. A
# verify took 29.5 ms of CPU with the fixed threshold alone and 19.5 ms with this, as much as
# with the block kept in the heap; a login's auth CPU fell from 45.8 to 37.4 ms. It costs about
# 2 MB of idle RSS (the heap grows in huge pages), so the processes that never hash go without.
# Where THP is off, or glibc is older, the tunable does nothing.
SERVICE_ENV: dict[str, dict[str, str]] = {"auth": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}}


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a child gracefully: SIGTERM, then SIGKILL if it is still running after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class StackPorts:
    auth: int = 50051
    workspaces: int = 50052
    keys: int = 50053
    credentials: int = 50054
    edge: int = 8443

    @classmethod
    def free(cls) -> StackPorts:
        return cls(*(free_port() for _ in range(5)))


@dataclass
class Stack:
    """The suite under one state folder. ``services`` lists the gRPC services to start."""

    state: Path
    ports: StackPorts = field(default_factory=StackPorts)
    services: tuple[str, ...] = SERVICES
    env: Mapping[str, str] = field(default_factory=dict)
    database_urls: Mapping[str, str] = field(default_factory=dict)
    edges: int = 1
    edge_envs: tuple[Mapping[str, str], ...] = ()  # per-edge overrides, by index
    # RAILGUARD_EDGE_WORKERS of every edge unless env sets it: 1 (in-process) by default, since
    # tests count per-process state (rate limits and caches without Redis); None = the edge's
    # own default (one per CPU)
    edge_workers: int | None = 1
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[BinaryIO] = field(default_factory=list)
    edge_ports: list[int] = field(default_factory=list)

    @property
    def certs(self) -> Path:
        return self.state / "certs"

    @property
    def url(self) -> str:
        return f"https://localhost:{self.ports.edge}"

    def _env(self, name: str, listen_port: int) -> dict[str, str]:
        env = {
            **os.environ,
            "RAILGUARD_STATE_DIR": str(self.state),
            "RAILGUARD_CERTS_DIR": str(self.certs),
            "RAILGUARD_LISTEN": f"127.0.0.1:{listen_port}",
            "RAILGUARD_AUTH_ADDR": f"127.0.0.1:{self.ports.auth}",
            "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{self.ports.workspaces}",
            "RAILGUARD_KEYS_ADDR": f"127.0.0.1:{self.ports.keys}",
            "RAILGUARD_CREDENTIALS_ADDR": f"127.0.0.1:{self.ports.credentials}",
            "PYTHONUNBUFFERED": "1",
            **MALLOC_ENV,
            **SERVICE_ENV.get(name, {}),
            **self.env,
        }
        if name in self.database_urls:
            env["RAILGUARD_DATABASE_URL"] = self.database_urls[name]
        return env

    def _spawn(self, label: str, module: str, env: dict[str, str]) -> None:
        log = open(self.state / f"{label}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self.processes[label] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def start(self, timeout: float = 60.0) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        ensure_dev_pki(self.certs)
        for name in self.services:
            self._spawn(name, f"{name}_service", self._env(name, getattr(self.ports, name)))
        self.edge_ports = [self.ports.edge] + [free_port() for _ in range(self.edges - 1)]
        for index, port in enumerate(self.edge_ports):
            env = self._env("edge", port)
            if self.edge_workers is not None and "RAILGUARD_EDGE_WORKERS" not in self.env:
                env["RAILGUARD_EDGE_WORKERS"] = str(self.edge_workers)
            if index < len(self.edge_envs):
                env.update(self.edge_envs[index])
            self._spawn(f"edge{index or ''}", "edge_service", env)
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def log_tails(self, chars: int = 2000) -> str:
        """The end of every process's log, labelled: what a failing test prints to be diagnosed."""
        parts = []
        for label in self.processes:
            path = self.state / f"{label}.log"
            text = path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"
            parts.append(f"--- {label}.log ---\n{text}")
        return "\n".join(parts)

    def respawn(self, name: str) -> None:
        """Start gRPC service ``name`` again on its port (after it exited or was killed)."""
        previous = self.processes.get(name)
        if previous is not None and previous.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self._spawn(name, f"{name}_service", self._env(name, getattr(self.ports, name)))

    def _grpc_healthy(self, port: int) -> bool:
        files = TlsFiles(self.certs / "edge.crt", self.certs / "edge.key", self.certs / "ca.crt")
        channel = grpc.secure_channel(f"127.0.0.1:{port}", client_credentials(files))
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False
        finally:
            channel.close()

    def _edge_ready(self, port: int) -> bool:
        context = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        try:
            with urllib.request.urlopen(
                f"https://localhost:{port}/readyz", context=context, timeout=2
            ) as r:  # noqa: S310
                if r.status != 200:
                    return False
                degraded = json.loads(r.read() or b"{}").get("degraded", [])
        except (OSError, ValueError):
            return False
        # ready, and its change feeds from this stack's services are live: a test's first
        # request is then decided the way every later one is (a feed that is not live is a
        # correct fallback, but a slower, timing-dependent one)
        return not any(
            d.removeprefix("feed:") in self.services for d in degraded if d.startswith("feed:")
        )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {name: getattr(self.ports, name) for name in self.services}
        edges = set(self.edge_ports)
        while pending or edges:
            for label, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{label} exited with {proc.returncode}; see {self.state / (label + '.log')}"
                    )
            pending = {n: p for n, p in pending.items() if not self._grpc_healthy(p)}
            if not pending:
                edges = {p for p in edges if not self._edge_ready(p)}
            if time.monotonic() > deadline:
                raise TimeoutError(f"not healthy in {timeout}s: {sorted(pending) or sorted(edges)}")
            time.sleep(0.2)

    def service_env(self, name: str) -> dict[str, str]:
        """The environment a service of this stack runs with (for its one-shot commands)."""
        return self._env(name, getattr(self.ports, name))

    def stop_service(self, name: str, timeout: float = 15.0) -> None:
        """Stop one gRPC service gracefully (SIGTERM, then SIGKILL after ``timeout``)."""
        stop_process(self.processes.pop(name), timeout)

    def start_service(self, name: str, timeout: float = 60.0) -> None:
        """Start one gRPC service again on its port and wait until it reports healthy."""
        self._spawn(name, f"{name}_service", self.service_env(name))
        deadline = time.monotonic() + timeout
        while not self._grpc_healthy(getattr(self.ports, name)):
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.state / (name + '.log')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not healthy in {timeout}s")
            time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
