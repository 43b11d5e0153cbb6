"""GetWorkspace through the Railguard runtime vs a bare grpc.aio echo, same mTLS, same client.

The Railguard side is the real workspaces process (interceptor chain, access rule, principal
check, one database read); the baseline returns its request and does nothing else.
"""

from __future__ import annotations

import dataclasses

from railguard.workspaces.v1 import workspaces_service_pb2

from benchmarks.baselines import ECHO_METHOD
from benchmarks.loadgen import GrpcTarget
from benchmarks.measure import Side, compare, throughput_figure
from benchmarks.processes import baseline_server
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session

NAME = "grpc"


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    figure = Figure(
        "gRPC GetWorkspace / bare echo",
        "rps",
        Target(TargetKind.MIN_RATIO, 0.8),
        note=f"database {bench.database}; concurrency {session.budget.concurrency} on one channel",
    )
    certs = bench.certs
    request = workspaces_service_pb2.GetWorkspaceRequest(
        name=f"workspaces/{bench.seed.workspace_id}"
    )
    get = GrpcTarget(
        address=f"127.0.0.1:{bench.stack.ports.workspaces}",
        method="/railguard.workspaces.v1.WorkspacesService/GetWorkspace",
        request=request.SerializeToString(),
        metadata=bench.seed.principal_metadata(),
        cert=str(certs / "edge.crt"),
        key=str(certs / "edge.key"),
        ca=str(certs / "ca.crt"),
    )
    load = session.budget.load()
    ours = Side(get, {"workspaces": bench.pids()["workspaces"]})
    with baseline_server("grpc-echo", certs, session.workdir / "grpc-echo.log") as (port, proc):
        # the same bytes, metadata and credentials; only the server differs
        echo = dataclasses.replace(get, address=f"127.0.0.1:{port}", method=ECHO_METHOD)
        baseline = Side(echo, {"echo": proc.pid})
        comparison = compare(session.client, ours, baseline, load, session.budget.rounds)
    return [throughput_figure(figure, comparison, load)]
