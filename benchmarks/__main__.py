"""``python -m benchmarks [--only NAME] [--quick] [--scale large]``: run, print the table, save JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    bench_credentials,
    bench_edge,
    bench_grpc,
    bench_keys,
    bench_login,
    bench_memory,
    bench_mfa,
    bench_peers,
    bench_revocation,
    bench_soak,
)
from benchmarks.processes import ROOT, rss_mb
from benchmarks.report import Figure, format_table, write_json
from benchmarks.session import Budget, Session
from benchmarks.stack import database_kind

# Memory first: it is the idle footprint, before any load has run.
BENCHMARKS: dict[str, Callable[[Session], list[Figure]]] = {
    bench_memory.NAME: bench_memory.run,
    bench_login.NAME: bench_login.run,
    bench_grpc.NAME: bench_grpc.run,
    bench_edge.NAME: bench_edge.run,
    bench_peers.NAME: bench_peers.run,
    bench_keys.NAME: bench_keys.run,
    bench_revocation.NAME: bench_revocation.run,
    bench_mfa.NAME: bench_mfa.run,
    bench_credentials.NAME: bench_credentials.run,
    bench_soak.NAME: bench_soak.run,  # last: 10 minutes unless --soak-seconds/--quick
}
RESULTS = ROOT / "bench-results"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="repeatable")
    parser.add_argument("--quick", action="store_true", help="one short round per side")
    parser.add_argument("--db", choices=("auto", "sqlite", "postgres"), default="auto")
    parser.add_argument(
        "--scale",
        choices=("default", "large"),
        default="default",
        help="large: also seed and measure 1M stored API keys (adds about a minute)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=None,
        help="length of the soak's mixed traffic (default 600; 60 with --quick)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    return parser.parse_args(argv)


def _run_one(name: str, bench: Callable[[Session], list[Figure]], session: Session) -> list[Figure]:
    started = time.monotonic()
    print(f"- {name} ...", end=" ", flush=True)
    try:
        figures = bench(session)
    except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
        figures = [Figure(name, "", None, error=f"{type(exc).__name__}: {exc}")]
    print(f"{time.monotonic() - started:.1f}s", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    budget = Budget.quick() if args.quick else Budget.full()
    database = database_kind(args.db)
    selected = args.only or list(BENCHMARKS)
    print(
        f"Railguard benchmarks: {budget.cores} cores, database {database}, scale {args.scale}, "
        f"{budget}",
        flush=True,
    )
    started = time.monotonic()
    load_before = os.getloadavg()
    figures: list[Figure] = []
    soak = args.soak_seconds or (60.0 if args.quick else 600.0)
    session = Session(budget, RESULTS / "work", database, args.scale, soak_seconds=soak)
    try:
        for name in selected:
            figures += _run_one(name, BENCHMARKS[name], session)
        rss_after = (
            {k: round(rss_mb(p), 1) for k, p in session.stack().pids().items()}
            if session.started
            else {}
        )
    finally:
        session.close()
    print()
    print(format_table(figures))
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "cores": budget.cores,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "database": database,
        "scale": args.scale,
        "budget": {
            "duration": budget.duration,
            "warmup": budget.warmup,
            "rounds": budget.rounds,
            "concurrency": budget.concurrency,
            "quick": args.quick,
        },
        "seconds": round(time.monotonic() - started, 1),
        # other work on the machine skews absolute figures; ratios are measured alternately
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "rss_after_load_mb": rss_after,
    }
    write_json(args.out, figures, meta)
    print(f"\nwrote {args.out} ({meta['seconds']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
