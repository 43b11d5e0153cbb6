"""The load generator: one separate client process, bounded in time and in request count.

The client runs in its own (spawned) process so that it never shares an event loop or a GIL with
the server it measures; the same client code drives a Railguard target and its baseline. Only
completions inside the measurement window (after a warm-up) are counted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "Argon2Target",
    "GrpcTarget",
    "HttpTarget",
    "Load",
    "LoadClient",
    "LoadResult",
    "Target",
]


@dataclass(frozen=True, slots=True)
class GrpcTarget:
    """A unary RPC sent as raw bytes over mutual TLS (no protobuf work in the client)."""

    address: str
    method: str
    request: bytes
    metadata: tuple[tuple[str, str | bytes], ...]
    cert: str
    key: str
    ca: str


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """``GET path`` over HTTPS/1.1, one keep-alive connection per concurrent worker."""

    port: int
    path: str
    headers: tuple[tuple[str, str], ...]
    ca: str
    host: str = "127.0.0.1"
    server_name: str = "localhost"


@dataclass(frozen=True, slots=True)
class Argon2Target:
    """argon2id verify of one hash in worker threads: the raw cost a login cannot avoid."""

    hashed: str
    password: str
    memory_kib: int
    time_cost: int
    parallelism: int


Target = GrpcTarget | HttpTarget | Argon2Target


@dataclass(frozen=True, slots=True)
class Load:
    concurrency: int
    duration: float  # seconds measured
    warmup: float  # seconds run before the window opens, not counted
    max_requests: int = 200_000  # a hard bound on one run, whatever the duration


@dataclass(frozen=True, slots=True)
class LoadResult:
    ok: int
    failed: int
    seconds: float
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


class _Window:
    """Counts outcomes inside [start, end); thread-safe (the argon2 baseline records from threads)."""

    def __init__(self, load: Load) -> None:
        now = time.perf_counter()
        self.start = now + load.warmup
        self.end = self.start + load.duration
        self.cap = load.max_requests
        self.ok = self.failed = 0
        self.stopped_at: float | None = None
        self.first_error = ""
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self.stopped_at is not None or time.perf_counter() >= self.end

    def record(self, ok: bool, error: str = "") -> None:
        now = time.perf_counter()
        with self._lock:
            if error and not self.first_error:
                self.first_error = error
            if now < self.start or now >= self.end or self.stopped_at is not None:
                return
            if ok:
                self.ok += 1
            else:
                self.failed += 1
            if self.ok + self.failed >= self.cap:
                self.stopped_at = now

    def result(self) -> LoadResult:
        seconds = (self.stopped_at or self.end) - self.start
        return LoadResult(self.ok, self.failed, seconds, self.first_error)


async def _grpc(target: GrpcTarget, load: Load) -> LoadResult:
    import grpc

    files = (Path(target.ca), Path(target.key), Path(target.cert))
    ca, key, cert = await asyncio.to_thread(lambda: [f.read_bytes() for f in files])
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    async with grpc.aio.secure_channel(target.address, credentials) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        # bytes in, bytes out: no serializers on either side
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(target.method)
        window = _Window(load)

        async def worker() -> None:
            while not window.done():
                try:
                    await call(target.request, metadata=target.metadata, timeout=10)
                    window.record(True)
                except grpc.aio.AioRpcError as err:
                    window.record(False, f"{err.code().name}: {err.details()}")

        await asyncio.gather(*(worker() for _ in range(load.concurrency)))
        return window.result()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError("response without Content-Length")


async def _http(target: HttpTarget, load: Load) -> LoadResult:
    context = ssl.create_default_context(cafile=target.ca)
    extra = "".join(f"{name}: {value}\r\n" for name, value in target.headers)
    request = f"GET {target.path} HTTP/1.1\r\nHost: {target.server_name}\r\n{extra}\r\n".encode()
    window = _Window(load)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=context, server_hostname=target.server_name
        )
        try:
            while not window.done():
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(_content_length(head))
                status = head[9:12].decode()
                window.record(status == "200", "" if status == "200" else f"HTTP {status}")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    return window.result()


def _argon2(target: Argon2Target, load: Load) -> LoadResult:
    import argon2

    hasher = argon2.PasswordHasher(
        time_cost=target.time_cost,
        memory_cost=target.memory_kib,
        parallelism=target.parallelism,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )
    window = _Window(load)

    def worker() -> None:
        while not window.done():
            try:
                window.record(hasher.verify(target.hashed, target.password))
            except argon2.exceptions.VerificationError as err:
                window.record(False, repr(err))

    threads = [threading.Thread(target=worker) for _ in range(load.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return window.result()


def run_in_this_process(target: Target, load: Load) -> LoadResult:
    """Generate the load from the calling process (the client process's entry point)."""
    if isinstance(target, Argon2Target):
        return _argon2(target, load)
    if isinstance(target, GrpcTarget):
        return asyncio.run(_grpc(target, load))
    return asyncio.run(_http(target, load))


class LoadClient:
    """A long-lived client process (spawned, not forked: gRPC must not be forked)."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )

    def run(self, target: Target, load: Load) -> LoadResult:
        timeout = load.warmup + load.duration + 60
        return self._pool.submit(run_in_this_process, target, load).result(timeout=timeout)

    @property
    def pid(self) -> int:
        """The client process's id (for CPU accounting)."""
        return int(self._pool.submit(os.getpid).result(timeout=60))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
