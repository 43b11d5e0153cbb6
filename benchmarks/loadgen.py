"""The load generator: one separate client process, bounded in time and in request count.

The client runs in its own (spawned) process so that it never shares an event loop or a GIL with
the server it measures; the same client code drives a Railguard target and its baseline. Only
completions inside the measurement window (after a warm-up) are counted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import itertools
import multiprocessing
import os
import random
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "AeadSqlTarget",
    "Argon2Target",
    "CredentialsTarget",
    "GrpcTarget",
    "HttpTarget",
    "Load",
    "LoadClient",
    "LoadResult",
    "Target",
    "TotpTarget",
]

Metadata = tuple[tuple[str, str | bytes], ...]


@dataclass(frozen=True, slots=True)
class GrpcTarget:
    """A unary RPC sent as raw bytes over mutual TLS (no protobuf work in the client).

    ``variants`` (optional): (request, metadata) pairs used instead of ``request``/``metadata``,
    one chosen at random per call (many keys, many client addresses); with ``once`` each variant
    is sent exactly once, in order, and the run ends when they are used up (a batch of
    single-use inputs such as MFA challenges).
    """

    address: str
    method: str
    request: bytes
    metadata: Metadata
    cert: str
    key: str
    ca: str
    variants: tuple[tuple[bytes, Metadata], ...] = ()
    once: bool = False


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """``GET path`` (or ``method`` with a JSON ``body``) over HTTPS/1.1, one keep-alive
    connection per concurrent worker."""

    port: int
    path: str
    headers: tuple[tuple[str, str], ...]
    ca: str
    host: str = "127.0.0.1"
    server_name: str = "localhost"
    method: str = "GET"
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Argon2Target:
    """argon2id verify of one hash in worker threads: the raw cost a login cannot avoid."""

    hashed: str
    password: str
    memory_kib: int
    time_cost: int
    parallelism: int


@dataclass(frozen=True, slots=True)
class TotpTarget:
    """The raw cost of checking a TOTP code: HMAC-SHA1 over the steps of the window (RFC 6238)."""

    secret: bytes
    window: tuple[int, ...] = (-1, 0)


@dataclass(frozen=True, slots=True)
class AeadSqlTarget:
    """AES-256-GCM encrypt + one INSERT, then one SELECT + decrypt, on a PostgreSQL table."""

    dsn: str  # asyncpg (postgresql://) form
    table: str
    value: str


@dataclass(frozen=True, slots=True)
class CredentialsTarget:
    """CreateCredential (as ``edge``) then UseCredential of it (as ``runtime``): one operation."""

    address: str
    parent: str
    value: str
    metadata: Metadata
    edge_cert: str
    edge_key: str
    runtime_cert: str
    runtime_key: str
    ca: str


Target = GrpcTarget | HttpTarget | Argon2Target | TotpTarget | AeadSqlTarget | CredentialsTarget


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
        batch: Iterator[tuple[bytes, Metadata]] = iter(target.variants)
        choose = random.Random(1).choice  # noqa: S311 - picks inputs, not secrets

        def next_call() -> tuple[bytes, Metadata] | None:
            if target.once:
                return next(batch, None)
            if target.variants:
                return choose(target.variants)
            return target.request, target.metadata

        async def worker() -> None:
            while not window.done() and (chosen := next_call()) is not None:
                request, metadata = chosen
                try:
                    await call(request, metadata=metadata, timeout=10)
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
    if target.body:
        extra += f"Content-Type: application/json\r\nContent-Length: {len(target.body)}\r\n"
    request = (
        f"{target.method} {target.path} HTTP/1.1\r\nHost: {target.server_name}\r\n{extra}\r\n"
    ).encode() + target.body
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


def _totp(target: TotpTarget, load: Load) -> LoadResult:
    """One verify = the code of every step in the window, compared in constant time."""
    window = _Window(load)
    code = "000000"  # a wrong code: every step of the window is computed and compared
    while not window.done():
        counter = int(time.time()) // 30
        matched = False
        for offset in target.window:
            mac = hmac.digest(target.secret, (counter + offset).to_bytes(8, "big"), "sha1")
            start = mac[-1] & 0xF
            (word,) = struct.unpack_from(">I", mac, start)
            matched |= hmac.compare_digest(f"{(word & 0x7FFFFFFF) % 1_000_000:06d}", code)
        window.record(True)
    return window.result()


async def _aead_sql(target: AeadSqlTarget, load: Load) -> LoadResult:
    import asyncpg  # type: ignore[import-untyped]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    plaintext = target.value.encode()
    ids = itertools.count()
    prefix = f"{os.getpid()}-{time.monotonic_ns()}-"
    window = _Window(load)
    pool = await asyncpg.create_pool(target.dsn, min_size=1, max_size=load.concurrency)
    try:

        async def worker() -> None:
            while not window.done():
                row_id = f"{prefix}{next(ids)}"
                context = f"bench/{row_id}".encode()
                nonce = os.urandom(12)
                sealed = nonce + aead.encrypt(nonce, plaintext, context)
                try:
                    async with pool.acquire() as conn:
                        await conn.execute(
                            f"INSERT INTO {target.table} (id, ciphertext) VALUES ($1, $2)",  # noqa: S608
                            row_id,
                            sealed,
                        )
                    async with pool.acquire() as conn:
                        stored = await conn.fetchval(
                            f"SELECT ciphertext FROM {target.table} WHERE id = $1",  # noqa: S608
                            row_id,
                        )
                    ok = aead.decrypt(stored[:12], stored[12:], context) == plaintext
                    window.record(ok, "" if ok else "decrypted value differs")
                except Exception as exc:  # noqa: BLE001 - counted as a failure
                    window.record(False, repr(exc))

        await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    finally:
        await pool.close()
    return window.result()


async def _credentials(target: CredentialsTarget, load: Load) -> LoadResult:
    import grpc
    from railguard.credentials.v1 import credentials_service_pb2 as pb

    async def channel(cert: str, key: str) -> grpc.aio.Channel:
        files = (Path(target.ca), Path(key), Path(cert))
        ca, k, c = await asyncio.to_thread(lambda: [f.read_bytes() for f in files])
        made = grpc.aio.secure_channel(target.address, grpc.ssl_channel_credentials(ca, k, c))
        await asyncio.wait_for(made.channel_ready(), 10)
        return made

    edge = await channel(target.edge_cert, target.edge_key)
    runtime = await channel(target.runtime_cert, target.runtime_key)
    service = "/railguard.credentials.v1.CredentialsService/"
    create = edge.unary_unary(
        service + "CreateCredential",
        request_serializer=pb.CreateCredentialRequest.SerializeToString,
        response_deserializer=pb.Credential.FromString,
    )
    use = runtime.unary_unary(
        service + "UseCredential",
        request_serializer=pb.UseCredentialRequest.SerializeToString,
        response_deserializer=pb.UseCredentialResponse.FromString,
    )
    window = _Window(load)
    numbers = itertools.count()

    async def worker() -> None:
        while not window.done():
            credential = pb.Credential(
                display_name=f"bench {next(numbers)}", provider="generic", value=target.value
            )
            try:
                made = await create(
                    pb.CreateCredentialRequest(parent=target.parent, credential=credential),
                    metadata=target.metadata,
                    timeout=10,
                )
                used = await use(
                    pb.UseCredentialRequest(name=made.name, purpose="bench"),
                    metadata=target.metadata,
                    timeout=10,
                )
                ok = used.value == target.value
                window.record(ok, "" if ok else "used value differs")
            except grpc.aio.AioRpcError as err:
                window.record(False, f"{err.code().name}: {err.details()}")

    try:
        await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    finally:
        await edge.close()
        await runtime.close()
    return window.result()


def run_in_this_process(target: Target, load: Load) -> LoadResult:
    """Generate the load from the calling process (the client process's entry point)."""
    if isinstance(target, Argon2Target):
        return _argon2(target, load)
    if isinstance(target, TotpTarget):
        return _totp(target, load)
    if isinstance(target, GrpcTarget):
        return asyncio.run(_grpc(target, load))
    if isinstance(target, AeadSqlTarget):
        return asyncio.run(_aead_sql(target, load))
    if isinstance(target, CredentialsTarget):
        return asyncio.run(_credentials(target, load))
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
