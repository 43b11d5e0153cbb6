"""How long a revoked API key keeps working at another edge replica (DESIGN §8: ≤ 1 s).

Two edge processes in front of the same keys service. Each trial makes a new key, warms both
edges' caches with one authenticated GET each, revokes the key through edge 0 (HTTPS, the
owner's JWT) and polls edge 1 with the key back to back until it answers 401. The time counted
runs from sending the revoke to the first 401 at edge 1, so it includes the revoke request
itself (an upper bound).

* with Redis: a separate stack whose edges and keys service share ``RAILGUARD_REDIS_URL``; the
  keys service publishes the revocation and every edge drops the key at once (the edge's key
  cache is 30 s in this mode, so anything under that is the invalidation working);
* without Redis: the shared benchmark stack; the edge's 1 s key-cache bound is all there is.
"""

from __future__ import annotations

import statistics
import time

from edge_service.api_keys import SAFE_TTL

from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import BenchStack, bench_stack, create_api_key, edge_client

NAME = "revocation"
REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT_MS = 1000.0
POLL_TIMEOUT = 5.0
SERVICES = ("auth", "workspaces", "keys")


def _trial(bench: BenchStack) -> float:
    stack, seed = bench.stack, bench.seed
    key, name = create_api_key(stack, seed, ("workspaces:read",))
    path = f"/v1/workspaces/{seed.workspace_id}"
    with_key = {"X-API-Key": key}
    first, second = stack.edge_ports[0], stack.edge_ports[1]
    with edge_client(stack, first) as a, edge_client(stack, second) as b:
        for client in (a, b):
            status = client.get(path, headers=with_key).status_code
            if status != 200:
                raise RuntimeError(f"warm-up GET answered {status}")
        started = time.perf_counter()
        revoked = a.post(
            f"/v1/{name}:revoke", json={}, headers={"Authorization": f"Bearer {seed.access_token}"}
        )
        revoked.raise_for_status()
        while (elapsed := time.perf_counter() - started) < POLL_TIMEOUT:
            status = b.get(path, headers=with_key).status_code
            if status == 401:
                return elapsed
            if status != 200:
                raise RuntimeError(f"polling GET answered {status}")
    raise TimeoutError(f"the revoked key still worked at edge 1 after {POLL_TIMEOUT}s")


def _figures(label: str, samples: list[float], how: str) -> list[Figure]:
    target = Target(TargetKind.MAX_VALUE, LIMIT_MS, "ms")
    samples = [1000 * s for s in samples]
    details = {"trials_ms": [round(s, 1) for s in samples]}
    return [
        Figure(
            f"revocation visible at edge 2, {label} (median of {len(samples)})",
            "ms",
            target,
            railguard=statistics.median(samples),
            note=how,
            details=details,
        ),
        Figure(
            f"revocation visible at edge 2, {label} (max of {len(samples)})",
            "ms",
            target,
            railguard=max(samples),
            details=details,
        ),
    ]


def run(session: Session) -> list[Figure]:
    trials = 10 if session.budget.rounds > 1 else 3
    shared = session.stack()
    figures = _figures(
        "no Redis",
        [_trial(shared) for _ in range(trials)],
        "from sending the revoke via edge 1 to the first 401 at edge 2, polled back to back; "
        f"edge key cache {SAFE_TTL:g} s",
    )
    with bench_stack(
        session.workdir / "stack-redis",
        SERVICES,
        session.database,
        edges=2,
        env={"RAILGUARD_REDIS_URL": REDIS_URL},
    ) as redis_stack:
        time.sleep(1.0)  # let both edges' invalidation subscriptions come up
        figures += _figures(
            "Redis",
            [_trial(redis_stack) for _ in range(trials)],
            f"edges and keys share {REDIS_URL}; edge key cache {SAFE_TTL:g} s, dropped at once on "
            "the keys service's invalidation message",
        )
    return figures
