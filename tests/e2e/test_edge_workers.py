"""RAILGUARD_EDGE_WORKERS=2: one port, two worker processes, a crashed one replaced, all stopped."""

from __future__ import annotations

import os
import signal
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import Stack, StackPorts

from .conftest import running_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("workers-stack"),
        ports=StackPorts.free(),
        services=("auth",),
        env={"RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100", "RAILGUARD_GRACE_SECONDS": "3"},
        edge_workers=2,
    )
    with running_stack(s) as running:
        yield running


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _ready(stack: Stack) -> int:
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    with urllib.request.urlopen(f"{stack.url}/readyz", context=context, timeout=5) as r:  # noqa: S310
        return int(r.status)


def test_two_workers_serve_one_port_and_a_crashed_one_is_replaced(stack: Stack) -> None:
    supervisor = stack.processes["edge"]
    assert _wait_for(lambda: len(_children(supervisor.pid)) == 2, 30)
    before = _children(supervisor.pid)
    assert _ready(stack) == 200
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert _wait_for(lambda: len(_children(supervisor.pid) - {victim}) == 2, 30), (
        "the crashed worker was not restarted"
    )
    assert victim not in _children(supervisor.pid)
    assert _wait_for(lambda: _ready(stack) == 200, 30)
    assert supervisor.poll() is None


def test_sigterm_stops_every_worker_and_the_supervisor_exits_0(stack: Stack) -> None:
    supervisor = stack.processes["edge"]
    workers = _children(supervisor.pid)
    assert len(workers) == 2
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
