"""devstack.stop_process: the one graceful stop of a child (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from devstack import stop_process

IGNORES_TERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def _spawn(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)  # noqa: S603
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_a_child_that_honours_sigterm_ends_by_it() -> None:
    proc = _spawn("import time; print('ready', flush=True); time.sleep(60)")
    stop_process(proc, timeout=10)
    assert proc.returncode == -signal.SIGTERM
    assert proc.stdout is not None
    proc.stdout.close()


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    proc = _spawn(IGNORES_TERM)
    started = time.monotonic()
    stop_process(proc, timeout=0.5)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started >= 0.5
    assert proc.stdout is not None
    proc.stdout.close()


def test_an_exited_child_is_left_alone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    proc.wait()
    stop_process(proc)
    assert proc.returncode == 0
