"""An authenticated GET through the real edge vs a bare Starlette app, same uvicorn+TLS, same client.

The edge side is the whole path a user's request takes: TLS, routing, JWT verification, the
rate limiter, a ResolveAccess RPC to workspaces, the GetWorkspace RPC, JSON transcoding.
"""

from __future__ import annotations

from benchmarks.loadgen import HttpTarget
from benchmarks.measure import Side, compare, throughput_figure
from benchmarks.processes import baseline_server
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session

NAME = "edge"


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    figure = Figure(
        "edge GET /v1/workspaces/{id} (JWT) / bare Starlette",
        "rps",
        Target(TargetKind.MIN_RATIO, 0.6),
        note=(
            f"database {bench.database}; {session.budget.concurrency} keep-alive HTTPS/1.1 "
            "connections; JWT (not an API key: the edge has no key verifier yet)"
        ),
    )
    certs = bench.certs
    path = f"/v1/workspaces/{bench.seed.workspace_id}"
    headers = (("Authorization", f"Bearer {bench.seed.access_token}"),)
    edge = HttpTarget(
        port=bench.stack.ports.edge, path=path, headers=headers, ca=str(certs / "ca.crt")
    )
    load = session.budget.load()
    ours = Side(edge, bench.pids())  # the edge and every service behind it
    with baseline_server("http", certs, session.workdir / "bare-http.log") as (port, proc):
        bare = HttpTarget(port=port, path=path, headers=headers, ca=str(certs / "ca.crt"))
        baseline = Side(bare, {"bare-http": proc.pid})
        comparison = compare(session.client, ours, baseline, load, session.budget.rounds)
    return [throughput_figure(figure, comparison, load)]
