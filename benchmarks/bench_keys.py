"""keys VerifyApiKey vs a bare grpc.aio echo at 1k, 100k and (``--scale large``) 1M stored keys.

The keys table of the running keys service is seeded directly: rows built with the service's own
table definition (``keys_service.adapters.tables.ApiKeyRow``) and key domain (``generate_key``
and a ``PepperRing`` with the pepper the service was started with), so every digest is the one
the service computes, then bulk-loaded with asyncpg ``COPY``. The table grows in place from one
size to the next (1k → 100k → 1M) and is ``ANALYZE``d after each step, as autovacuum would.

Each call presents a valid key chosen at random from a uniform sample of the whole table (all of
them at 1k, a reservoir sample of ``POOL`` at the larger sizes). The echo baseline gets the same
request bytes, metadata and client certificate (``edge``). All keys belong to the seeded
workspace, so the keys service's workspace-status lookup (ResolveAccess, cached for ≤ 1 s) runs
against the real workspaces process about once a second, as in production for one busy tenant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Callable

from keys_service.adapters.peppers import parse_peppers
from keys_service.adapters.tables import ApiKeyRow
from keys_service.domain import KeyEnvironment, PepperRing, generate_key
from railguard.keys.v1 import keys_service_pb2
from servicekit.clients import outgoing_metadata
from servicekit.context import Principal

from benchmarks.baselines import ECHO_METHOD
from benchmarks.loadgen import GrpcTarget, Metadata
from benchmarks.measure import Side, compare, throughput_figure
from benchmarks.processes import baseline_server
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import KEYS_PEPPERS, BenchStack

NAME = "keys"
KEY_COUNTS = {"default": (1_000, 100_000), "large": (1_000, 100_000, 1_000_000)}
POOL = 1_000  # distinct keys drawn from at every size (= the smallest size: same last-used writes)
SCOPE = "workspaces:read"
VERIFY_TARGET = 0.5  # DESIGN §8: keys Verify RPC ≥ 0.5× a bare gRPC echo's throughput
FLAT = 0.9  # our reading of DESIGN §8 "flat": at least 0.9x the 1k figure
_COPY_BATCH = 50_000


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class _Seeder:
    """Grows the keys table and keeps a uniform reservoir sample of the keys it wrote."""

    def __init__(self, dsn: str, ring: PepperRing, workspace_id: str, user_id: str) -> None:
        self.dsn, self.ring = dsn, ring
        self.workspace_id, self.user_id = workspace_id, user_id
        self.count = 0
        self.sample: list[str] = []
        self._random = random.Random(8)  # noqa: S311 - sampling, not secrets
        self.columns = [c.name for c in ApiKeyRow.__table__.columns]
        self.seconds = 0.0

    def _record(self, now: dt.datetime) -> tuple[object, ...]:
        key = generate_key(KeyEnvironment.LIVE)
        digest = self.ring.hash(key)
        self.count += 1
        if len(self.sample) < POOL:
            self.sample.append(key.reveal())
        else:
            slot = self._random.randrange(self.count)
            if slot < POOL:
                self.sample[slot] = key.reveal()
        values: dict[str, object] = {
            "id": uuid.uuid4().hex,
            "workspace_id": self.workspace_id,
            "name": f"bench {self.count}",
            "environment": KeyEnvironment.LIVE.value,
            "display_prefix": key.display_prefix,
            "secret_digest": digest.digest,
            "secret_pepper_version": digest.pepper_version,
            "scopes": json.dumps([SCOPE]),
            "allowed_cidrs": "[]",
            "allowed_origins": "[]",
            "created_by": self.user_id,
            "creator_aal": "aal1",  # COPY takes no server default
            "created_at": now,
            "updated_at": now,
        }
        return tuple(values.get(c) for c in self.columns)

    async def grow_to(self, total: int) -> None:
        import asyncpg  # type: ignore[import-untyped]

        started = time.perf_counter()
        conn = await asyncpg.connect(self.dsn)
        try:
            now = dt.datetime.now(dt.UTC)
            while self.count < total:
                n = min(_COPY_BATCH, total - self.count)
                records = [self._record(now) for _ in range(n)]
                await conn.copy_records_to_table(
                    ApiKeyRow.__tablename__, records=records, columns=self.columns
                )
            await conn.execute(f"ANALYZE {ApiKeyRow.__tablename__}")
            stored = await conn.fetchval(f"SELECT count(*) FROM {ApiKeyRow.__tablename__}")  # noqa: S608
        finally:
            await conn.close()
        self.seconds += time.perf_counter() - started
        if stored < total:
            raise RuntimeError(f"keys table holds {stored} rows, expected at least {total}")


def _variants(sample: list[str]) -> tuple[tuple[bytes, Metadata], ...]:
    metadata = tuple(outgoing_metadata(Principal(client_ip="127.0.0.1"), "bench"))
    return tuple(
        (
            keys_service_pb2.VerifyApiKeyRequest(
                key=key, client_ip="127.0.0.1", required_scope=SCOPE
            ).SerializeToString(),
            metadata,
        )
        for key in sample
    )


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


def run(session: Session) -> list[Figure]:
    counts = KEY_COUNTS["large" if session.scale == "large" else "default"]
    bench = session.stack()
    if bench.database != "postgres" or "keys" not in bench.database_urls:
        return [
            Figure(
                f"keys VerifyApiKey @{_label(n)} keys / bare echo",
                "rps",
                Target(TargetKind.MIN_RATIO, VERIFY_TARGET),
                note="not measured: the keys table is seeded on PostgreSQL only (--db postgres)",
            )
            for n in counts
        ]
    return _run(session, bench, counts)


def _run(session: Session, bench: BenchStack, counts: tuple[int, ...]) -> list[Figure]:
    certs = bench.certs
    seeder = _Seeder(
        _asyncpg_dsn(bench.database_urls["keys"]),
        parse_peppers(KEYS_PEPPERS),
        bench.seed.workspace_id,
        bench.seed.user_id,
    )
    base = GrpcTarget(
        address=f"127.0.0.1:{bench.stack.ports.keys}",
        method="/railguard.keys.v1.KeysService/VerifyApiKey",
        request=b"",
        metadata=(),
        cert=str(certs / "edge.crt"),
        key=str(certs / "edge.key"),
        ca=str(certs / "ca.crt"),
    )
    pids = bench.pids()
    load = session.budget.load()
    figures: list[Figure] = []
    by_size: dict[int, float] = {}
    with baseline_server("grpc-echo", certs, session.workdir / "grpc-echo.log") as (port, proc):
        for n in counts:
            grow_started = time.perf_counter()
            asyncio.run(seeder.grow_to(n))
            grown = time.perf_counter() - grow_started
            verify = dataclasses.replace(base, variants=_variants(seeder.sample))
            echo = dataclasses.replace(verify, address=f"127.0.0.1:{port}", method=ECHO_METHOD)
            ours = Side(verify, {"keys": pids["keys"], "workspaces": pids["workspaces"]})
            comparison = compare(
                session.client, ours, Side(echo, {"echo": proc.pid}), load, session.budget.rounds
            )
            figure = Figure(
                f"keys VerifyApiKey @{_label(n)} keys / bare echo",
                "rps",
                Target(TargetKind.MIN_RATIO, VERIFY_TARGET),
                note=(
                    f"{seeder.count:,} rows in api_keys (seeded by COPY in {grown:.2f}s); random "
                    f"valid keys from a uniform sample of {len(seeder.sample):,}; concurrency "
                    f"{load.concurrency} on one channel"
                ),
            )
            figure = throughput_figure(figure, comparison, load)
            figure.details["stored_keys"] = seeder.count
            figure.details["seed_seconds"] = round(grown, 1)
            figures.append(figure)
            if figure.railguard is not None and not figure.error:
                by_size[n] = figure.railguard
    figures += _flatness(counts, by_size, lambda n: n in by_size)
    return figures


def _flatness(
    counts: tuple[int, ...], by_size: dict[int, float], measured: Callable[[int], bool]
) -> list[Figure]:
    first = counts[0]
    return [
        Figure(
            f"keys VerifyApiKey @{_label(n)} / @{_label(first)} keys (flatness)",
            "rps",
            Target(TargetKind.MIN_RATIO, FLAT),
            railguard=by_size.get(n),
            baseline=by_size.get(first),
            note="flat = at least 0.9x the 1k figure (our reading of DESIGN §8)"
            if n == counts[1]
            else "",
        )
        for n in counts[1:]
        if measured(n) and measured(first)
    ]
