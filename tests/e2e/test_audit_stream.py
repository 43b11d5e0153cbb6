"""The live audit stream over a real ``wss://`` connection through the whole stack.

The client is a minimal RFC 6455 one over ``ssl``: it shows the raw handshake (status of a
refusal, echoed subprotocol, the exact request target) that a full client library hides. The
edge's uvicorn serves WebSockets with the locked ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

from devstack import Stack

from .conftest import Api

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Handshake:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    target: str = ""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    async def text(self, wait: float = 10.0) -> dict[str, Any]:
        """The next text frame as JSON; raises ``ConnectionError(code, reason)`` on a close."""
        assert self.reader is not None
        while True:
            head = await asyncio.wait_for(self.reader.readexactly(2), wait)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            assert not head[1] & 0x80, "server frames are never masked"
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            if opcode == 0x1:
                return dict(json.loads(payload))
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise ConnectionError(code, payload[2:].decode())
            # pings and pongs: ignored (the server does not require pong answers here)

    async def close(self) -> None:
        if self.writer is not None:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(struct.pack("!H", 1000)))
            self.writer.write(bytes([0x88, 0x80 | len(payload)]) + mask + payload)
            self.writer.close()


async def connect(
    stack: Stack,
    ws_name: str,
    *,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
    after: int | None = None,
) -> Handshake:
    """Open ``wss://localhost:{edge}/v1/{ws_name}/auditEvents:stream`` and read the handshake."""
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    reader, writer = await asyncio.open_connection(
        "localhost", stack.ports.edge, ssl=context, server_hostname="localhost"
    )
    target = f"/v1/{ws_name}/auditEvents:stream" + (f"?after={after}" if after is not None else "")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: localhost:{stack.ports.edge}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *header_lines = raw.decode().split("\r\n")
    status = int(status_line.split()[1])
    got = {
        k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)
    }
    if status == 101:
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()  # noqa: S324 - RFC 6455
        assert got["sec-websocket-accept"] == expected
        return Handshake(status, got, target=target, reader=reader, writer=writer)
    length = int(got.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
    writer.close()
    return Handshake(status, got, body, target)


async def _team(api: Api) -> tuple[str, str, str, str]:
    """A workspace, its Owner's and a User's tokens, and an Admin's token."""
    _, owner, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Audit"})
    assert s == 200, ws
    tokens = {}
    for role in ("ROLE_ADMIN", "ROLE_USER"):
        email, token, _ = await api.user()
        s, body, _ = await api.call(
            "POST", f"/v1/{ws['name']}/members", owner, json={"email": email, "role": role}
        )
        assert s == 200, body
        tokens[role] = token
    return ws["name"], owner, tokens["ROLE_ADMIN"], tokens["ROLE_USER"]


async def test_an_admin_sees_a_member_add_live(api: Api, stack: Stack) -> None:
    ws_name, owner, admin, _ = await _team(api)
    stream = await connect(stack, ws_name, headers={"Authorization": f"Bearer {admin}"})
    assert stream.status == 101
    assert admin not in stream.target and "token" not in stream.target
    try:
        backlog = [await stream.text() for _ in range(3)]
        assert [e["action"] for e in backlog] == ["workspace.create", "member.add", "member.add"]
        email, _, _ = await api.user()
        s, body, _ = await api.call(
            "POST", f"/v1/{ws_name}/members", owner, json={"email": email, "role": "ROLE_USER"}
        )
        assert s == 200, body
        live = await stream.text()
        assert (live["action"], live["target"], live["sequence"]) == (
            "member.add",
            body["name"],
            "4",
        )
    finally:
        await stream.close()


async def test_a_browser_resumes_with_the_subprotocol_credential(api: Api, stack: Stack) -> None:
    ws_name, _, admin, _ = await _team(api)
    stream = await connect(stack, ws_name, subprotocols=["railguard.bearer", admin], after=2)
    assert stream.status == 101
    assert stream.headers["sec-websocket-protocol"] == "railguard.bearer"  # never the token
    assert admin not in stream.target
    try:
        assert (await stream.text())["sequence"] == "3"
    finally:
        await stream.close()


async def test_users_outsiders_and_anonymous_callers_are_refused(api: Api, stack: Stack) -> None:
    ws_name, _, _, user = await _team(api)
    _, outsider, _ = await api.user()
    for headers, status in (
        ({"Authorization": f"Bearer {user}"}, 403),
        ({"Authorization": f"Bearer {outsider}"}, 404),
        ({}, 401),
    ):
        refused = await connect(stack, ws_name, headers=headers)
        assert refused.status == status, (headers, refused)


def test_plain_ws_is_refused(stack: Stack) -> None:
    """``ws://`` to the edge: the port speaks only TLS, so no HTTP answer and no upgrade."""
    with socket.create_connection(("127.0.0.1", stack.ports.edge), timeout=5) as sock:
        sock.sendall(
            b"GET /v1/workspaces/x/auditEvents:stream HTTP/1.1\r\nHost: localhost\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        try:
            answer = sock.recv(1024)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert b"101" not in answer and not answer.startswith(b"HTTP/1.1 1")
