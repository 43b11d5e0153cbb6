"""Every answer the edge port sends keeps the error contract: problem+json with the security
headers and a request id, the HTTP server's own refusals included, over real TLS sockets.

Requests are written by hand (the point is what a client library would never send).
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from devstack import Stack, StackPorts

from .conftest import Api, running_stack

pytestmark = pytest.mark.timeout(120)

SECURITY_HEADERS = (
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "content-security-policy",
    "cache-control",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("contract-stack"),
        ports=StackPorts.free(),
        services=("auth", "workspaces"),
        env={"RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100", "RAILGUARD_LOG_LEVEL": "WARNING"},
    )
    with running_stack(s) as running:
        yield running


def raw_exchange(stack: Stack, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Write ``data`` on a fresh TLS connection and read one response (the server closes)."""
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", stack.ports.edge), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as tls,
    ):
        try:
            tls.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading everything
        received = b""
        try:
            while b"\r\n\r\n" not in received or not _complete(received):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False


def assert_contract(status: int, headers: dict[str, str], body: bytes, expected: int) -> Any:
    assert status == expected, (status, headers, body)
    assert headers["content-type"] == "application/problem+json", headers
    for name in SECURITY_HEADERS:
        assert name in headers, (name, headers)
    problem = json.loads(body)
    assert problem["status"] == expected and problem["code"]
    assert len(headers["x-request-id"]) >= 16 and problem["request_id"] == headers["x-request-id"]
    return problem


def test_oversized_headers_are_a_431_problem(stack: Stack) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    problem = assert_contract(*raw_exchange(stack, request), 431)
    assert problem["code"] == "REQUEST_HEADERS_TOO_LARGE"


def test_a_malformed_request_is_a_400_problem(stack: Stack) -> None:
    for request in (
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n",
    ):
        problem = assert_contract(*raw_exchange(stack, request), 400)
        assert problem["code"] == "MALFORMED_REQUEST"


def test_undecodable_and_unrouted_paths_are_problems(stack: Stack) -> None:
    for path, expected in (
        (b"/v1/workspaces/a%0Ab", {400, 404}),
        (b"/v1/nothing-here", {404}),
        (b"/%00", {400, 404}),
    ):
        request = b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        status, headers, body = raw_exchange(stack, request)
        assert status in expected, (path, status, body)
        assert_contract(status, headers, body, status)


def test_a_405_carries_allow(stack: Stack) -> None:
    for path, allowed in ((b"/v1/workspaces", {"GET", "POST"}), (b"/healthz", {"GET"})):
        request = b"PUT " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        status, headers, body = raw_exchange(stack, request)
        assert_contract(status, headers, body, 405)
        assert allowed <= {v.strip() for v in headers["allow"].split(",")}, headers


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
async def test_deeply_nested_json_is_malformed_json_on_a_public_route(
    api: Api, opener: bytes
) -> None:
    closer = b"]" if opener == b"[" else b"}"
    depth = 20_000 // len(opener)  # a 20 KB body or more, like the report's
    body = opener * depth + b"1" + closer * depth
    s, problem, headers = await api.call(
        "POST", "/v1/users", content=body, headers={"Content-Type": "application/json"}
    )
    assert (s, problem["code"]) == (400, "MALFORMED_JSON")
    assert headers["content-type"] == "application/problem+json"


async def test_an_access_token_in_non_canonical_base64url_is_refused(api: Api) -> None:
    _, token, _ = await api.user()
    s, _, _ = await api.call("GET", "/v1/users/me", token)
    assert s == 200
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    trailing_bits = token[:-1] + alphabet[(last & ~0b1111) | ((last + 1) & 0b1111)]
    for variant in (token + "==", token + "=", trailing_bits):
        s, problem, _ = await api.call("GET", "/v1/users/me", variant)
        assert (s, problem["code"]) == (401, "TOKEN_INVALID"), variant
