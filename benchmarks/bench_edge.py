"""An authenticated GET through the real edge vs a bare Starlette app, same uvicorn+TLS, same client.

Two figures: with a JWT (TLS, routing, JWT verification, the rate limiter, a ResolveAccess RPC
to workspaces, the GetWorkspace RPC, JSON transcoding) and with an API key in ``X-API-Key``
(DESIGN §8's figure: the key is verified by the keys service through VerifyApiKey and cached by
the edge for at most 1 s without Redis, then the same path). The key is created over HTTPS like a
user would, with the scope ``workspaces:read``.
"""

from __future__ import annotations

from edge_service.api_keys import SAFE_TTL

from benchmarks.loadgen import HttpTarget
from benchmarks.measure import Side, compare, throughput_figure
from benchmarks.processes import baseline_server
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import create_api_key

NAME = "edge"


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    certs = bench.certs
    path = f"/v1/workspaces/{bench.seed.workspace_id}"
    key, _ = create_api_key(bench.stack, bench.seed, ("workspaces:read",))
    cases = [
        (
            "edge GET /v1/workspaces/{id} (API key) / bare Starlette",
            (("X-API-Key", key),),
            f"X-API-Key; the edge caches a verified key for <= {SAFE_TTL:g} s (no Redis)",
        ),
        (
            "edge GET /v1/workspaces/{id} (JWT) / bare Starlette",
            (("Authorization", f"Bearer {bench.seed.access_token}"),),
            "Authorization: Bearer <JWT>",
        ),
    ]
    load = session.budget.load()
    figures = []
    with baseline_server("http", certs, session.workdir / "bare-http.log") as (port, proc):
        for name, headers, how in cases:
            figure = Figure(
                name,
                "rps",
                Target(TargetKind.MIN_RATIO, 0.6),
                note=(
                    f"database {bench.database}; {session.budget.concurrency} keep-alive "
                    f"HTTPS/1.1 connections; {how}"
                ),
            )
            edge = HttpTarget(
                port=bench.stack.ports.edge, path=path, headers=headers, ca=str(certs / "ca.crt")
            )
            ours = Side(edge, bench.pids(without=("edge1",)))
            bare = HttpTarget(port=port, path=path, headers=headers, ca=str(certs / "ca.crt"))
            baseline = Side(bare, {"bare-http": proc.pid})
            comparison = compare(session.client, ours, baseline, load, session.budget.rounds)
            figures.append(throughput_figure(figure, comparison, load))
    return figures
