"""How long a revocation keeps working at another edge replica (DESIGN §8, issue 10: ≤ 1 s).

Two edge processes in front of the same services. Three kinds of revocation, each measured the
same way: grant something, warm both edges with one authenticated GET each, make the change
through the first edge (HTTPS) and poll the second back to back until it refuses. The time
counted runs from sending the change to the first refusal at the second edge, so it includes the
change request itself (an upper bound). In the figures the edges are "edge 1" and "edge 2".

* API key revoked (``:revoke``, the owner's JWT): the key is refused with 401;
* session ended (``auth:logout`` of a fresh login): its access token is refused with 401;
* membership removed (the owner deletes a User member): the member is refused with 404.

A kind still accepted at edge 2 ``POLL_TIMEOUT`` seconds after its change is reported as an
error for that kind (the other kinds are still measured).

* with Redis: a separate stack whose edges and services share ``RAILGUARD_REDIS_URL``; the
  keys service publishes a key's revocation and every edge drops the key at once;
* without Redis: the shared benchmark stack; whatever bound each edge keeps by itself (for keys
  the ``SAFE_TTL`` cache) is all there is.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable

import httpx
from edge_service.api_keys import SAFE_TTL

from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import PASSWORD, BenchStack, bench_stack, create_api_key, edge_client

NAME = "revocation"
REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT_MS = 1000.0
POLL_TIMEOUT = 5.0
SERVICES = ("auth", "workspaces", "keys")


class StillAccepted(TimeoutError):
    """The revoked grant still worked at edge 2 ``POLL_TIMEOUT`` seconds after the change."""


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _warm(clients: tuple[httpx.Client, ...], path: str, headers: dict[str, str]) -> None:
    for client in clients:
        status = client.get(path, headers=headers).status_code
        if status != 200:
            raise RuntimeError(f"warm-up GET answered {status}")


def _until_refused(
    client: httpx.Client, path: str, headers: dict[str, str], refused: int, started: float
) -> float:
    """Poll ``path`` back to back until it answers ``refused``; the seconds since ``started``."""
    while (elapsed := time.perf_counter() - started) < POLL_TIMEOUT:
        status = client.get(path, headers=headers).status_code
        if status == refused:
            return elapsed
        if status != 200:
            raise RuntimeError(f"polling GET answered {status}")
    raise StillAccepted(f"still accepted at edge 2 after {POLL_TIMEOUT:g} s")


def _login(client: httpx.Client, email: str) -> str:
    response = client.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["tokens"]["accessToken"])


def _key_trial(bench: BenchStack) -> float:
    stack, seed = bench.stack, bench.seed
    key, name = create_api_key(stack, seed, ("workspaces:read",))
    path = f"/v1/workspaces/{seed.workspace_id}"
    with_key = {"X-API-Key": key}
    first, second = stack.edge_ports[0], stack.edge_ports[1]
    with edge_client(stack, first) as a, edge_client(stack, second) as b:
        _warm((a, b), path, with_key)
        started = time.perf_counter()
        revoked = a.post(f"/v1/{name}:revoke", json={}, headers=_bearer(seed.access_token))
        revoked.raise_for_status()
        return _until_refused(b, path, with_key, 401, started)


def _session_trial(bench: BenchStack) -> float:
    """A fresh login of the seed user, ended by logout at edge 1: its access token at edge 2."""
    stack, seed = bench.stack, bench.seed
    path = f"/v1/workspaces/{seed.workspace_id}"
    with edge_client(stack, stack.edge_ports[0]) as a, edge_client(stack, stack.edge_ports[1]) as b:
        session = _bearer(_login(a, seed.email))
        _warm((a, b), path, session)
        started = time.perf_counter()
        a.post("/v1/auth:logout", json={}, headers=session).raise_for_status()
        return _until_refused(b, path, session, 401, started)


def _membership_trial(bench: BenchStack) -> float:
    """A new User member of the seed's workspace, removed by the owner at edge 1."""
    stack, seed = bench.stack, bench.seed
    path = f"/v1/workspaces/{seed.workspace_id}"
    email = f"member-{secrets.token_hex(4)}@example.com"
    with edge_client(stack, stack.edge_ports[0]) as a, edge_client(stack, stack.edge_ports[1]) as b:
        a.post("/v1/users", json={"email": email, "password": PASSWORD}).raise_for_status()
        member = _bearer(_login(a, email))
        added = a.post(
            f"{path}/members",
            json={"email": email, "role": "ROLE_USER"},
            headers=_bearer(seed.access_token),
        )
        added.raise_for_status()
        name = str(added.json()["name"])
        _warm((a, b), path, member)
        started = time.perf_counter()
        a.delete(f"/v1/{name}", headers=_bearer(seed.access_token)).raise_for_status()
        return _until_refused(b, path, member, 404, started)


def _figures(what: str, label: str, samples: list[float], how: str) -> list[Figure]:
    target = Target(TargetKind.MAX_VALUE, LIMIT_MS, "ms")
    samples = [1000 * s for s in samples]
    details = {"trials_ms": [round(s, 1) for s in samples]}
    return [
        Figure(
            f"{what} visible at edge 2, {label} (median of {len(samples)})",
            "ms",
            target,
            railguard=statistics.median(samples),
            note=how,
            details=details,
        ),
        Figure(
            f"{what} visible at edge 2, {label} (max of {len(samples)})",
            "ms",
            target,
            railguard=max(samples),
            details=details,
        ),
    ]


def _measure(
    what: str,
    label: str,
    trial: Callable[[BenchStack], float],
    bench: BenchStack,
    trials: int,
    how: str,
) -> list[Figure]:
    """``trials`` runs of ``trial``; a change still accepted after the poll timeout is an error
    row for this kind (the same two rows, so the report always has both)."""
    samples: list[float] = []
    try:
        for _ in range(trials):
            samples.append(trial(bench))
    except StillAccepted as exc:
        target = Target(TargetKind.MAX_VALUE, LIMIT_MS, "ms")
        error = f"trial {len(samples) + 1}: {exc}"
        return [
            Figure(f"{what} visible at edge 2, {label} ({stat})", "ms", target, error=error)
            for stat in ("median", "max")
        ]
    return _figures(what, label, samples, how)


# (what is revoked, the trial, how it is made and seen)
_KINDS: tuple[tuple[str, Callable[[BenchStack], float], str], ...] = (
    ("key revocation", _key_trial, "an API key revoked via edge 1, polled with the key (401)"),
    ("session revocation (logout)", _session_trial, "logout via edge 1, polled with its JWT (401)"),
    ("membership removal", _membership_trial, "a member removed via edge 1, polled as them (404)"),
)


def _all_kinds(label: str, bench: BenchStack, trials: int, mode: str, keys: str) -> list[Figure]:
    """Every kind on one stack; ``mode`` describes the stack, ``keys`` the edge's key cache."""
    figures: list[Figure] = []
    for what, trial, made in _KINDS:
        note = f"from sending the change to the first refusal at edge 2, polled back to back; {made}; {mode}"
        if trial is _key_trial:
            note += f"; {keys}"
        figures += _measure(what, label, trial, bench, trials, note)
    return figures


def run(session: Session) -> list[Figure]:
    trials = 10 if session.budget.rounds > 1 else 3
    shared = session.stack()
    figures = _all_kinds("no Redis", shared, trials, "no Redis", f"edge key cache {SAFE_TTL:g} s")
    with bench_stack(
        session.workdir / "stack-redis",
        SERVICES,
        session.database,
        edges=2,
        env={"RAILGUARD_REDIS_URL": REDIS_URL},
    ) as redis_stack:
        time.sleep(1.0)  # let both edges' invalidation subscriptions come up
        figures += _all_kinds(
            "Redis",
            redis_stack,
            trials,
            f"edges and services share {REDIS_URL}",
            f"edge key cache {SAFE_TTL:g} s, dropped at once on the keys service's invalidation "
            "message",
        )
    return figures
