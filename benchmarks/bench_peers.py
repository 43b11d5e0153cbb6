"""Railguard's authenticated edge GET beside the peers a user would pick instead, in one run.

Every side answers ``GET /v1/workspaces/{id}`` for an authenticated caller with a ~250-byte JSON
document, over HTTPS/1.1 keep-alive connections with the same certificate, from the same client
process, on the same database server; rounds alternate between all sides so drift hits each alike:

- Railguard's edge with a JWT and with an API key (the suite ``make bench`` starts);
- FastAPI + fastapi-users (JWT, user + workspace + membership reads) under uvicorn, plain and
  ``uvicorn[standard]`` (uvloop + httptools);
- Django + DRF + djangorestframework-api-key under gunicorn ``gthread`` 5 workers x 2 threads;
- bare Starlette under the edge's own uvicorn/TLS settings (the ceiling, no authentication).

The peers run from their own venv (``.venv-peers``, locked in ``benchmarks/peers/requirements.lock``)
so none of their dependencies reach Railguard's. The figures are Railguard's rps over the best
peer's rps (target 1.5x, DESIGN's aim 2x) and Railguard's server CPU per request over the best
peer's (target <= 1x); every side's rps and CPU per request are listed in the notes and the JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devstack import stop_process
from devstack.databases import sync_postgres_databases

from benchmarks.loadgen import HttpTarget
from benchmarks.measure import Round, Side, measured
from benchmarks.processes import ROOT, baseline_server, free_port, wait_for_port
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import POSTGRES_ADMIN, create_api_key

NAME = "peers"
PEERS_DIR = ROOT / "benchmarks" / "peers"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
GUNICORN_WORKERS, GUNICORN_THREADS = 5, 2


@dataclass(slots=True)
class Measured:
    """All rounds of one side; the best round stands for it."""

    label: str
    side: Side
    rounds: list[Round] = field(default_factory=list)

    @property
    def best(self) -> Round:
        return max(self.rounds, key=lambda r: r.throughput)

    @property
    def server_cpu_ms(self) -> float:
        """CPU milliseconds per request of the serving processes (the load client excluded)."""
        return round(sum(v for k, v in self.best.cpu_ms_per_request.items() if k != "client"), 3)

    def summary(self) -> dict[str, object]:
        return {
            "rps_rounds": [round(r.throughput, 1) for r in self.rounds],
            "rps": round(self.best.throughput, 1),
            "server_cpu_ms_per_request": self.server_cpu_ms,
            "cpu_ms_per_request": self.best.cpu_ms_per_request,
            "failed": sum(r.result.failed for r in self.rounds),
        }


def run(session: Session) -> list[Figure]:
    if not PEERS_PYTHON.exists():
        message = f"{PEERS_PYTHON} is missing: `make bench` creates it from the peers' lock"
        return [Figure("peers", "rps", None, error=message)]
    bench = session.stack()
    certs, ca = bench.certs, str(bench.certs / "ca.crt")
    path = f"/v1/workspaces/{bench.seed.workspace_id}"
    key, _ = create_api_key(bench.stack, bench.seed, ("workspaces:read",))
    ours = bench.pids(without=("edge1",))
    edge = bench.stack.ports.edge
    sides = [
        Measured(
            "Railguard edge, JWT",
            Side(
                HttpTarget(
                    edge, path, (("Authorization", f"Bearer {bench.seed.access_token}"),), ca
                ),
                ours,
            ),
        ),
        Measured(
            "Railguard edge, API key", Side(HttpTarget(edge, path, (("X-API-Key", key),), ca), ours)
        ),
    ]
    work = session.workdir / "peers"
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as running:
        for label, port, token_header, workspace, pids in (
            running.enter_context(_fastapi(certs, work, bench.database, standard=False)),
            running.enter_context(_fastapi(certs, work, bench.database, standard=True)),
            running.enter_context(_django(certs, work, bench.database)),
        ):
            target = HttpTarget(port, f"/v1/workspaces/{workspace}", (token_header,), ca)
            sides.append(Measured(label, Side(target, pids)))
        port, proc = running.enter_context(baseline_server("http", certs, work / "bare.log"))
        bare = Measured(
            "bare Starlette (no auth)", Side(HttpTarget(port, path, (), ca), {"bare": proc.pid})
        )
        sides.append(bare)
        load = session.budget.load()
        for index in range(session.budget.rounds):
            for side in sides if index % 2 == 0 else reversed(sides):
                side.rounds.append(measured(session.client, side.side, load))
    return _figures(sides, bench.database, load.concurrency)


def _figures(sides: list[Measured], database: str, concurrency: int) -> list[Figure]:
    jwt, api_key, *peers, bare = sides
    best = max(peers, key=lambda s: s.best.throughput)
    details = {s.label: s.summary() for s in sides}
    listing = "; ".join(
        f"{s.label} {s.best.throughput:,.0f} rps {s.server_cpu_ms:.2f} ms CPU/req" for s in sides
    )
    errors = [f"{s.label}: {s.summary()['failed']} failed" for s in sides if s.summary()["failed"]]
    note = f"database {database}; {concurrency} keep-alive HTTPS/1.1 connections; best peer: {best.label}"
    figures = []
    for ours in (jwt, api_key):
        kind = "JWT" if ours is jwt else "API key"
        figures.append(
            Figure(
                f"edge GET ({kind}) rps / best peer",
                "rps",
                Target(TargetKind.MIN_RATIO, 1.5),
                railguard=ours.best.throughput,
                baseline=best.best.throughput,
                note=f"{note}; {listing}" if ours is jwt else note,
                error="; ".join(errors),
                details=details,
            )
        )
        figures.append(
            Figure(
                f"server CPU per request ({kind}) / best peer",
                "ms",
                Target(TargetKind.MAX_RATIO, 1.0),
                railguard=ours.server_cpu_ms,
                baseline=best.server_cpu_ms,
                note=f"CPU of the serving processes per request; best peer: {best.label}",
            )
        )
    figures.append(
        Figure(
            "best peer rps / bare Starlette",
            "rps",
            None,
            railguard=best.best.throughput,
            baseline=bare.best.throughput,
            note=f"{best.label} against the unauthenticated ceiling (context, no target)",
        )
    )
    return figures


@contextlib.contextmanager
def _database(kind: str, work: Path, label: str, *, asyncpg: bool) -> Iterator[str]:
    if kind == "sqlite":
        file = work / f"{label}-{secrets.token_hex(4)}.sqlite3"
        yield f"sqlite+aiosqlite:///{file}" if asyncpg else str(file)
        return
    driver = "postgresql+asyncpg" if asyncpg else ""
    with sync_postgres_databases(POSTGRES_ADMIN, "rg_bench_peer", [label], driver) as urls:
        yield urls[label]


def _seed(command: list[str], env: dict[str, str]) -> dict[str, str]:
    done = subprocess.run(  # noqa: S603 - the peers' own interpreter and scripts
        command, cwd=PEERS_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{command[1:3]} failed: {done.stderr.strip()[-500:]}")
    seeded: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return seeded


@contextlib.contextmanager
def _server(
    command: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - the peers' own interpreter and scripts
            command, cwd=PEERS_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, proc, timeout=60)
        yield proc
    finally:
        stop_process(proc, 15)


PeerInfo = tuple[str, int, tuple[str, str], str, dict[str, int]]


@contextlib.contextmanager
def _fastapi(certs: Path, work: Path, database: str, *, standard: bool) -> Iterator[PeerInfo]:
    label = "FastAPI + fastapi-users, uvicorn" + ("[standard]" if standard else "")
    secret = secrets.token_hex(32)
    env = {**os.environ, "PYTHONPATH": str(PEERS_DIR)}
    with _database(database, work, "fastapi", asyncpg=True) as db:
        seeded = _seed(
            [str(PEERS_PYTHON), "fastapi_peer.py", "seed", "--db", db, "--secret", secret], env
        )
        port = free_port()
        command = [
            str(PEERS_PYTHON), "fastapi_peer.py", "serve", "--db", db, "--secret", secret,
            "--port", str(port), "--certs", str(certs), *(["--standard"] if standard else []),
        ]  # fmt: skip
        with _server(command, env, port, work / "fastapi.log") as proc:
            header = ("Authorization", f"Bearer {seeded['token']}")
            yield label, port, header, seeded["workspace_id"], {"fastapi": proc.pid}


@contextlib.contextmanager
def _django(certs: Path, work: Path, database: str) -> Iterator[PeerInfo]:
    label = f"Django + DRF + drf-api-key, gunicorn gthread {GUNICORN_WORKERS}x{GUNICORN_THREADS}"
    with _database(database, work, "django", asyncpg=False) as db:
        env = {
            **os.environ,
            "PYTHONPATH": str(PEERS_DIR),
            "PEER_DB": db,
            "PEER_SECRET": secrets.token_urlsafe(32),
            "DJANGO_SETTINGS_MODULE": "djpeer.settings",
        }
        seeded = _seed([str(PEERS_PYTHON), "-m", "djpeer.seed"], env)
        port = free_port()
        command = [
            str(PEERS_PYTHON), "-m", "gunicorn", "djpeer.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS),
            "--certfile", str(certs / "edge.crt"), "--keyfile", str(certs / "edge.key"),
            "--log-level", "warning",
        ]  # fmt: skip
        with _server(command, env, port, work / "django.log") as proc:
            workers = _children(proc.pid, GUNICORN_WORKERS)
            pids = {"gunicorn": proc.pid, **{f"worker{i}": p for i, p in enumerate(workers)}}
            yield label, port, ("X-API-Key", seeded["key"]), seeded["workspace_id"], pids


def _children(pid: int, expected: int, timeout: float = 30.0) -> list[int]:
    """The child processes of ``pid`` once ``expected`` of them run (gunicorn's workers)."""
    import time

    deadline = time.monotonic() + timeout
    children: list[int] = []
    while time.monotonic() < deadline:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        children = [int(c) for c in text]
        if len(children) >= expected:
            return children
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn started {len(children)} of {expected} workers")
