"""SIGTERM on a real edge process: stop accepting, close idle keep-alive connections at once,
finish in-flight requests within the grace, exit 0 without an error line."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack import Stack, StackPorts

from .conftest import running_stack

pytestmark = pytest.mark.timeout(120)

GRACE = 5.0


@pytest.fixture(scope="module", params=[1, 2], ids=["in-process", "2-workers"])
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """Each edge in its own process, then as a supervisor of two workers on one port."""
    s = Stack(
        tmp_path_factory.mktemp("shutdown-stack"),
        edge_workers=request.param,
        ports=StackPorts.free(),
        services=("auth",),
        env={
            "RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100",
            "RAILGUARD_LOG_LEVEL": "INFO",
            "RAILGUARD_GRACE_SECONDS": str(GRACE),
        },
        edges=2,
    )
    with running_stack(s) as running:
        yield running


def _tls(stack: Stack, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    plain = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(plain, server_hostname="localhost")


def _read_response(tls: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = tls.recv(65536)
        assert chunk, f"connection closed mid-response: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = tls.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def _error_lines(log: Path, since: int) -> list[str]:
    text = log.read_bytes()[since:].decode(errors="replace")
    bad = []
    for line in text.splitlines():
        try:
            level = json.loads(line).get("level", "")
        except ValueError:
            level = "error" if "Traceback" in line or "ERROR" in line else ""
        if level in {"error", "critical"}:
            bad.append(line)
    return bad


def _stop(stack: Stack, label: str) -> tuple[subprocess.Popen[bytes], float]:
    proc = stack.processes[label]
    proc.send_signal(signal.SIGTERM)
    return proc, time.monotonic()


def test_an_idle_edge_with_an_idle_keep_alive_connection_exits_at_once(stack: Stack) -> None:
    log = stack.state / "edge.log"
    since = log.stat().st_size
    with httpx.Client(
        base_url=f"https://localhost:{stack.edge_ports[0]}",
        verify=ssl.create_default_context(cafile=str(stack.certs / "ca.crt")),
    ) as client:
        assert client.get("/healthz").status_code == 200  # its connection stays in the pool
        proc, sent = _stop(stack, "edge")
        returncode = proc.wait(GRACE + 5)
        elapsed = time.monotonic() - sent
    assert returncode == 0
    assert elapsed < 1.5, f"an idle edge took {elapsed:.2f}s of its {GRACE}s grace"
    assert _error_lines(log, since) == []


def test_an_in_flight_request_on_a_reused_connection_completes(stack: Stack) -> None:
    port = stack.edge_ports[1]
    log = stack.state / "edge1.log"
    since = log.stat().st_size
    busy, idle = _tls(stack, port), _tls(stack, port)
    with busy, idle:
        for conn in (busy, idle):  # both connections are reused keep-alive ones
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _read_response(conn)[0] == 200
        body = json.dumps({"email": "not-an-email", "password": "p" * 12}).encode()
        head = (
            b"POST /v1/users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        busy.sendall(head + body[:10])  # in flight: the edge is waiting for the rest
        time.sleep(0.3)
        proc, sent = _stop(stack, "edge1")
        idle.settimeout(2)
        assert idle.recv(1) == b"", "the idle keep-alive connection was closed at once"
        assert time.monotonic() - sent < 1.0
        with pytest.raises(OSError):  # no new connections
            _tls(stack, port).close()
        assert proc.poll() is None, "the edge waits for its in-flight request"
        busy.sendall(body[10:])
        status, headers, answer = _read_response(busy)
        assert status == 400, answer  # the auth service's answer: the request was served
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        busy.settimeout(2)
        assert busy.recv(1) == b"", "the connection is closed once its response is sent"
        returncode = proc.wait(GRACE + 5)
        elapsed = time.monotonic() - sent
    assert returncode == 0
    assert elapsed < GRACE, f"took {elapsed:.2f}s"
    assert _error_lines(log, since) == []
