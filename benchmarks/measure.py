"""Run a Railguard target and its baseline in alternating rounds and turn them into a figure.

Besides throughput, each round records how much CPU every process involved used, so the report
can say where the time goes (CPU milliseconds per request, per process).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from benchmarks.loadgen import Load, LoadClient, LoadResult, Target
from benchmarks.processes import cpu_seconds
from benchmarks.report import Figure

__all__ = ["Comparison", "Round", "Side", "compare", "measured", "throughput_figure"]


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: what to send and which processes serve it (label → pid)."""

    target: Target
    processes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Round:
    result: LoadResult
    cpu_ms_per_request: dict[str, float]

    @property
    def throughput(self) -> float:
        return self.result.throughput


@dataclass(frozen=True, slots=True)
class Comparison:
    railguard: list[Round]
    baseline: list[Round]

    @staticmethod
    def best(rounds: list[Round]) -> Round:
        return max(rounds, key=lambda r: r.throughput)


def measured(client: LoadClient, side: Side, load: Load) -> Round:
    processes = {"client": client.pid, **side.processes}
    before = {label: cpu_seconds(pid) for label, pid in processes.items()}
    started = time.perf_counter()
    result = client.run(side.target, load)
    wall = time.perf_counter() - started
    used = {label: cpu_seconds(pid) - before[label] for label, pid in processes.items()}
    # CPU share of the whole run (warm-up included) spread over the measured request rate
    per_request = {
        label: round(1000 * seconds / wall / result.throughput, 3) if result.throughput else 0.0
        for label, seconds in used.items()
    }
    return Round(result, per_request)


def compare(
    client: LoadClient, railguard: Side, baseline: Side, load: Load, rounds: int
) -> Comparison:
    """``rounds`` runs of each side, alternating which goes first, so drift hits both alike."""
    ours: list[Round] = []
    theirs: list[Round] = []
    for index in range(rounds):
        order = [(railguard, ours), (baseline, theirs)]
        for side, results in order if index % 2 else reversed(order):
            results.append(measured(client, side, load))
    return Comparison(ours, theirs)


def throughput_figure(figure: Figure, comparison: Comparison, load: Load) -> Figure:
    """Fill ``figure`` with the best round of each side; any failed request is an error."""
    ours, theirs = Comparison.best(comparison.railguard), Comparison.best(comparison.baseline)
    figure.railguard, figure.baseline = ours.throughput, theirs.throughput
    results = [r.result for r in comparison.railguard + comparison.baseline]
    failed = [r for r in results if r.failed]
    if failed:
        first = failed[0].first_error
        figure.error = f"{sum(r.failed for r in failed)} failed requests, first: {first}"
    figure.details = {
        "concurrency": load.concurrency,
        "seconds_per_round": load.duration,
        "warmup_seconds": load.warmup,
        "railguard_rounds": [round(r.throughput, 1) for r in comparison.railguard],
        "baseline_rounds": [round(r.throughput, 1) for r in comparison.baseline],
        "railguard_requests": sum(r.result.ok for r in comparison.railguard),
        "baseline_requests": sum(r.result.ok for r in comparison.baseline),
        "railguard_cpu_ms_per_request": ours.cpu_ms_per_request,
        "baseline_cpu_ms_per_request": theirs.cpu_ms_per_request,
    }
    return figure
