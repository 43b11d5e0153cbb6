"""Soak: minutes of mixed traffic through the edge, RSS of every process sampled as it runs.

The traffic rotates in short slices over the kinds a deployment sees most: a JWT read
(GET a workspace: ResolveAccess + GetWorkspace), an API-key read (VerifyApiKey, cached), the
caller's workspace list, the current user, and a write (PATCH the workspace's display name: a
transaction, an audit event, the relay). After each slice the resident memory of every process
is sampled. The figure is each process's growth per 100 000 requests, from the first sample after
one full rotation (caches and pools warmed) to the last; a leak shows as a steady slope, a warm-up
as a step that the baseline sample has already absorbed.

Length: ``--soak-seconds`` (default 600 s; 60 s with ``--quick``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from benchmarks.loadgen import HttpTarget, Load
from benchmarks.processes import rss_mb
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import create_api_key

NAME = "soak"
CONCURRENCY = 8
# a process growing faster than this per 100k requests is leaking (the old edge: ~105 MB)
LIMIT_MB_PER_100K = 10.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    requests: int
    rss: dict[str, float]


def _targets(session: Session) -> list[tuple[str, HttpTarget]]:
    bench = session.stack()
    ca = str(bench.certs / "ca.crt")
    port = bench.stack.ports.edge
    workspace = f"/v1/workspaces/{bench.seed.workspace_id}"
    jwt = (("Authorization", f"Bearer {bench.seed.access_token}"),)
    key, _ = create_api_key(bench.stack, bench.seed, ("workspaces:read",))
    rename = json.dumps({"displayName": "Soak"}).encode()
    return [
        ("jwt read", HttpTarget(port=port, path=workspace, headers=jwt, ca=ca)),
        ("key read", HttpTarget(port=port, path=workspace, headers=(("X-API-Key", key),), ca=ca)),
        ("list", HttpTarget(port=port, path="/v1/workspaces", headers=jwt, ca=ca)),
        ("me", HttpTarget(port=port, path="/v1/users/me", headers=jwt, ca=ca)),
        (
            "write",
            HttpTarget(
                port=port,
                path=f"{workspace}?updateMask=displayName",
                headers=jwt,
                ca=ca,
                method="PATCH",
                body=rename,
            ),
        ),
    ]


def growth_per_100k(samples: list[Sample], label: str) -> float | None:
    """MB per 100k requests between the first and the last sample (None without requests)."""
    first, last = samples[0], samples[-1]
    requests = last.requests - first.requests
    if requests <= 0:
        return None
    return (last.rss[label] - first.rss[label]) / requests * 100_000


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    targets = _targets(session)
    pids = bench.pids()
    total = session.soak_seconds
    slice_seconds = max(2.0, min(10.0, total / (3 * len(targets))))
    samples = [Sample(time.monotonic(), 0, {k: rss_mb(p) for k, p in pids.items()})]
    requests = failed = 0
    first_error = ""
    started = time.monotonic()
    turn = 0
    while time.monotonic() - started < total:
        kind, target = targets[turn % len(targets)]
        turn += 1
        result = session.client.run(target, Load(CONCURRENCY, slice_seconds, 0.0))
        requests += result.ok + result.failed
        failed += result.failed
        first_error = first_error or result.first_error
        samples.append(Sample(time.monotonic(), requests, {k: rss_mb(p) for k, p in pids.items()}))
        rss = " ".join(f"{k}={v:.0f}" for k, v in samples[-1].rss.items())
        print(f"\n  soak {samples[-1].at - started:5.0f}s {requests:>7} req ({kind}) RSS MB {rss}")
    warmed = samples[min(len(targets), len(samples) - 2) :]  # from one rotation on
    seconds = samples[-1].at - started
    figures = []
    for index, label in enumerate(pids):
        figures.append(
            Figure(
                f"soak RSS growth {label}",
                "MB/100k req",
                Target(TargetKind.MAX_VALUE, LIMIT_MB_PER_100K, "MB/100k req"),
                railguard=growth_per_100k(warmed, label),
                note=(
                    f"{seconds:.0f} s mixed traffic, {requests} requests ({failed} failed"
                    f"{': ' + first_error if first_error else ''}), {CONCURRENCY} connections; "
                    "baseline sample after one rotation"
                    if index == 0
                    else ""
                ),
                details={
                    "rss_start_mb": round(samples[0].rss[label], 1),
                    "rss_warmed_mb": round(warmed[0].rss[label], 1),
                    "rss_end_mb": round(samples[-1].rss[label], 1),
                    "requests_measured": warmed[-1].requests - warmed[0].requests,
                },
            )
        )
    return figures
