"""The edge's h11 protocol: the HTTP server's own refusals keep the error contract, whatever
way the bytes arrive (a real socket test is tests/e2e/test_edge_contract.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from edge_service.gateway import security_headers
from edge_service.http_server import edge_protocol
from uvicorn.server import ServerState

LIMIT = 16 * 1024


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8443), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _exchange(*chunks: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    config = uvicorn.Config(
        _app,
        h11_max_incomplete_event_size=LIMIT,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    protocol = edge_protocol(security_headers(60), LIMIT)(config, ServerState(), {})
    transport = Transport()
    protocol.connection_made(transport)
    for chunk in chunks:
        protocol.data_received(chunk)
    await asyncio.sleep(0.01)  # let an accepted request's task answer
    head, _, body = transport.written.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, transport.closed


def _assert_problem(headers: dict[str, str], body: bytes, status: int, code: str) -> None:
    assert headers["content-type"] == "application/problem+json"
    assert headers["strict-transport-security"].startswith("max-age=60")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["request_id"] == headers["x-request-id"]


async def test_a_head_over_the_limit_arriving_whole_is_a_431() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (LIMIT + 10) + b"\r\n\r\n"
    status, headers, body, closed = await _exchange(head)
    assert status == 431 and closed
    _assert_problem(headers, body, 431, "REQUEST_HEADERS_TOO_LARGE")


async def test_a_head_over_the_limit_arriving_in_pieces_is_a_431() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (LIMIT + 10) + b"\r\n\r\n"
    status, headers, body, _ = await _exchange(
        *(head[i : i + 4096] for i in range(0, len(head), 4096))
    )
    assert status == 431
    _assert_problem(headers, body, 431, "REQUEST_HEADERS_TOO_LARGE")


async def test_a_malformed_request_is_a_400_problem() -> None:
    status, headers, body, closed = await _exchange(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert status == 400 and closed
    _assert_problem(headers, body, 400, "MALFORMED_REQUEST")


async def test_a_head_within_the_limit_reaches_the_app() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (LIMIT - 100) + b"\r\n\r\n"
    status, _, body, _ = await _exchange(head)
    assert (status, body) == (200, b"ok")


def test_edge_workers_default_to_the_usable_cpus_and_are_a_setting() -> None:
    import pytest
    from edge_service.__main__ import edge_workers
    from edge_service.config import usable_cpus
    from servicekit.settings import load_settings

    assert edge_workers(load_settings("edge", {})) == usable_cpus() >= 1
    assert edge_workers(load_settings("edge", {"RAILGUARD_EDGE_WORKERS": "3"})) == 3
    with pytest.raises(ValueError, match="EDGE_WORKERS"):
        edge_workers(load_settings("edge", {"RAILGUARD_EDGE_WORKERS": "0"}))


def test_several_workers_with_a_metrics_port_are_refused() -> None:
    import pytest
    from edge_service.__main__ import edge_workers
    from servicekit.settings import load_settings

    env = {"RAILGUARD_EDGE_WORKERS": "2", "RAILGUARD_METRICS_LISTEN": "127.0.0.1:0"}
    with pytest.raises(ValueError, match="EDGE_WORKERS=1"):
        edge_workers(load_settings("edge", env))
    env["RAILGUARD_EDGE_WORKERS"] = "1"
    assert edge_workers(load_settings("edge", env)) == 1
