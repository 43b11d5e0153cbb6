"""The soak's figure: RSS growth per 100k requests between two samples. No timing here."""

from __future__ import annotations

from benchmarks.__main__ import BENCHMARKS, _parse
from benchmarks.bench_soak import NAME, Sample, growth_per_100k


def test_growth_is_scaled_to_100k_requests() -> None:
    samples = [Sample(0.0, 10_000, {"edge": 60.0}), Sample(60.0, 60_000, {"edge": 65.0})]
    assert growth_per_100k(samples, "edge") == 10.0


def test_no_requests_no_figure() -> None:
    samples = [Sample(0.0, 5, {"edge": 60.0}), Sample(1.0, 5, {"edge": 61.0})]
    assert growth_per_100k(samples, "edge") is None


def test_the_soak_runs_under_make_bench_and_its_length_is_configurable() -> None:
    assert NAME in BENCHMARKS
    assert _parse(["--only", "soak", "--soak-seconds", "90"]).soak_seconds == 90.0
    assert _parse([]).soak_seconds is None  # 600 s by default, 60 s with --quick
