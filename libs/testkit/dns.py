"""A tiny authoritative DNS server for tests: A records for a few names, on a loopback UDP port.

It stands in for Kubernetes' DNS answering a headless Service with every pod's address, so a
local test can give each process ``dns://127.0.0.1:<port>/auth:50051`` and watch gRPC's
``round_robin`` spread calls over the replicas behind one name (and TLS check that name). It runs
in a thread so that it answers while the test's own event loop is busy.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable, Mapping

__all__ = ["DnsServer"]

_A, _IN = 1, 1


class DnsServer:
    """Answers A queries for ``records`` (name → IPv4 addresses); NXDOMAIN for other names."""

    def __init__(self, records: Mapping[str, Iterable[str]], host: str = "127.0.0.1") -> None:
        self.records = {name.lower().rstrip("."): list(ips) for name, ips in records.items()}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    def target(self, name: str, port: int) -> str:
        """The gRPC target that resolves ``name`` through this server."""
        return f"dns://127.0.0.1:{self.port}/{name}:{port}"

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply:
                self._sock.sendto(reply, addr)

    def answer(self, query: bytes) -> bytes:
        """The response to one query message (RFC 1035 §4), or b"" for a malformed one."""
        if len(query) < 12:
            return b""
        qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return b""
        labels, i = [], 12
        while i < len(query) and query[i]:
            length = query[i]
            labels.append(query[i + 1 : i + 1 + length].decode("ascii", "replace"))
            i += length + 1
        if i + 5 > len(query):
            return b""
        qtype, qclass = struct.unpack("!HH", query[i + 1 : i + 5])
        question = query[12 : i + 5]
        name = ".".join(labels).lower()
        known = name in self.records
        ips = self.records[name] if known and qtype == _A and qclass == _IN else []
        # answer records point at the question's name (compression pointer to offset 12)
        answers = b"".join(
            b"\xc0\x0c" + struct.pack("!HHIH", _A, _IN, 1, 4) + socket.inet_aton(ip) for ip in ips
        )
        flags = 0x8400 | (0 if known else 3)  # response, authoritative; NXDOMAIN when unknown
        header = struct.pack("!HHHHHH", qid, flags, 1, len(ips), 0, 0)
        return header + question + answers
