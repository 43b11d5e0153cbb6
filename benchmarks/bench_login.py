"""Login RPC through the real auth service vs raw argon2id verify, both at concurrency = cores.

A login is dominated by one argon2id verify by design; this figure shows what the rest of the
login (the mTLS RPC, interceptors, two database transactions, the JWT signature) costs on top.
"""

from __future__ import annotations

import argon2
from railguard.auth.v1 import auth_service_pb2
from servicekit.clients import outgoing_metadata
from servicekit.context import Principal

from benchmarks.loadgen import Argon2Target, GrpcTarget
from benchmarks.measure import Side, compare, throughput_figure
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import PASSWORD

NAME = "login"
MEMORY_KIB, TIME_COST, PARALLELISM = 19456, 2, 1  # the auth service's floor (DESIGN §4)


def run(session: Session) -> list[Figure]:
    figure = Figure(
        "login / argon2id verify",
        "/s",
        Target(TargetKind.MIN_RATIO, 0.9),
        note=f"concurrency {session.budget.cores} (= cores) on both sides",
    )
    bench = session.stack()
    certs = bench.certs
    request = auth_service_pb2.LoginRequest(email=bench.seed.email, password=PASSWORD)
    login = GrpcTarget(
        address=f"127.0.0.1:{bench.stack.ports.auth}",
        method="/railguard.auth.v1.AuthService/Login",
        request=request.SerializeToString(),
        metadata=tuple(outgoing_metadata(Principal(client_ip="127.0.0.1"), "bench")),
        cert=str(certs / "edge.crt"),
        key=str(certs / "edge.key"),
        ca=str(certs / "ca.crt"),
    )
    hasher = argon2.PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )
    raw = Argon2Target(hasher.hash(PASSWORD), PASSWORD, MEMORY_KIB, TIME_COST, PARALLELISM)
    load = session.budget.load(concurrency=session.budget.cores)
    ours = Side(login, {"auth": bench.pids()["auth"]})
    comparison = compare(session.client, ours, Side(raw), load, session.budget.rounds)
    return [throughput_figure(figure, comparison, load)]
