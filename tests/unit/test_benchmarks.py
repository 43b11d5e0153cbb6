"""The benchmarks package imports and formats fixed figures correctly. No timing here."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.__main__ import BENCHMARKS
from benchmarks.loadgen import Load, LoadResult, _content_length
from benchmarks.report import Figure, Target, TargetKind, Verdict, format_table, ratio, write_json

THROUGHPUT = Target(TargetKind.MIN_RATIO, 0.8)
MEMORY = Target(TargetKind.MAX_VALUE, 80.0, "MB")


def test_ratio() -> None:
    assert ratio(400.0, 500.0) == 0.8
    assert ratio(None, 500.0) is None
    assert ratio(400.0, 0.0) is None


def test_verdicts() -> None:
    assert Figure("a", "rps", THROUGHPUT, 400.0, 500.0).verdict is Verdict.PASS
    assert Figure("b", "rps", THROUGHPUT, 399.0, 500.0).verdict is Verdict.BELOW
    assert Figure("c", "MB", MEMORY, 80.0, 38.0).verdict is Verdict.PASS
    assert Figure("d", "MB", MEMORY, 80.1, 38.0).verdict is Verdict.BELOW
    assert Figure("e", "rps", THROUGHPUT).verdict is Verdict.NOT_MEASURED
    assert Figure("f", "ops/s", None, note="hook only").verdict is Verdict.NOT_MEASURED
    assert Figure("g", "rps", THROUGHPUT, 1.0, 1.0, error="boom").verdict is Verdict.ERROR


def test_table() -> None:
    table = format_table(
        [
            Figure("gRPC Get / echo", "rps", THROUGHPUT, 1200.0, 3000.0),
            Figure("idle RSS auth", "MB", MEMORY, 70.25, 38.0, note="after start-up"),
            Figure("keys Verify", "rps", THROUGHPUT, note="not measured: hook only"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "railguard", "baseline", "ratio", "target", "verdict"]
    assert "1,200 rps" in lines[2] and "3,000 rps" in lines[2]
    assert "0.40x" in lines[2] and ">= 0.8x" in lines[2] and lines[2].endswith("BELOW")
    assert "70.2 MB" in lines[3] and "<= 80 MB" in lines[3] and lines[3].endswith("PASS")
    assert lines[4].endswith("not measured")
    assert "keys Verify: not measured: hook only" in table


def test_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    write_json(out, [Figure("x", "rps", THROUGHPUT, 9.0, 10.0)], {"date": "2024-01-01"})
    document = json.loads(out.read_text())
    assert document["date"] == "2024-01-01"
    (figure,) = document["figures"]
    assert figure["ratio"] == 0.9 and figure["verdict"] == "PASS"
    assert figure["target"] == {"kind": "min_ratio", "threshold": 0.8, "unit": ""}


def test_load_result_and_http_parsing() -> None:
    assert LoadResult(ok=300, failed=0, seconds=1.5).throughput == 200.0
    assert Load(16, 4.0, 0.5).max_requests > 0
    assert _content_length(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n") == 42


def test_every_benchmark_is_registered() -> None:
    assert set(BENCHMARKS) == {
        "memory",
        "login",
        "grpc",
        "edge",
        "peers",
        "keys",
        "revocation",
        "mfa",
        "credentials",
        "soak",
    }


def test_cost_ratio_verdicts() -> None:
    """A cost target passes while Railguard's cost is at most the threshold times the peer's."""
    cost = Target(TargetKind.MAX_RATIO, 1.0, "ms")
    assert cost.describe() == "<= 1x"
    assert Figure("cpu", "ms", cost, 1.5, 1.5).verdict is Verdict.PASS
    assert Figure("cpu", "ms", cost, 1.51, 1.5).verdict is Verdict.BELOW
    assert Figure("cpu", "ms", cost, 1.0, None).verdict is Verdict.NOT_MEASURED


def test_peers_compare_with_the_best_peer() -> None:
    from benchmarks.bench_peers import Measured, _figures
    from benchmarks.loadgen import HttpTarget
    from benchmarks.measure import Round, Side

    def side(label: str, rps: float, cpu: float) -> Measured:
        target = HttpTarget(1, "/", (), "ca.crt")
        result = LoadResult(ok=int(rps * 2), failed=0, seconds=2.0)
        return Measured(label, Side(target), [Round(result, {"server": cpu, "client": 9.0})])

    sides = [
        side("jwt", 900.0, 1.0),
        side("key", 1200.0, 0.8),
        side("fastapi", 500.0, 1.7),
        side("django", 600.0, 2.0),
        side("bare", 9000.0, 0.1),
    ]
    jwt_rps, jwt_cpu, key_rps, key_cpu, context = _figures(sides, "postgres", 16)
    assert (jwt_rps.railguard, jwt_rps.baseline) == (900.0, 600.0)  # django is the best peer
    assert jwt_rps.verdict is Verdict.PASS and jwt_rps.ratio == 1.5
    assert (jwt_cpu.railguard, jwt_cpu.baseline) == (1.0, 2.0)  # the client's CPU is not counted
    assert key_rps.ratio == 2.0 and key_cpu.verdict is Verdict.PASS
    assert (context.railguard, context.baseline) == (600.0, 9000.0)
