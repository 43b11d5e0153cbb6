"""Idle RSS of each service process the Stack started, beside a bare grpc.aio echo process."""

from __future__ import annotations

import time

from benchmarks.processes import baseline_server, rss_mb
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session

NAME = "memory"
LIMIT_MB = 80.0
SETTLE_SECONDS = 1.0


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    time.sleep(SETTLE_SECONDS)
    ours = {label: rss_mb(pid) for label, pid in bench.pids().items()}
    with baseline_server("grpc-echo", bench.certs, session.workdir / "grpc-echo.log") as (_, proc):
        time.sleep(SETTLE_SECONDS)
        baseline = rss_mb(proc.pid)
    note = "after start-up and the seed requests (sign-up, login, create workspace)"
    return [
        Figure(
            f"idle RSS {label}",
            "MB",
            Target(TargetKind.MAX_VALUE, LIMIT_MB, "MB"),
            railguard=value,
            baseline=baseline,
            note=note if label == next(iter(ours)) else "",
        )
        for label, value in ours.items()
    ]
