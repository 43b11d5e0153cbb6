"""The edge's process model: N worker processes serving one listening socket.

With ``RAILGUARD_EDGE_WORKERS`` = 1 the edge serves in its own process (no supervisor). With
N > 1 this process becomes a supervisor: it binds the port once, starts N workers (``python -m
edge_service`` again, each with the listening socket's descriptor in
``RAILGUARD_EDGE_WORKER_FD``) and the kernel hands each new connection to one of them. Each
worker is a whole edge: its own channels, caches and feeds.

* SIGTERM or SIGINT to the supervisor stops the workers in two steps: SIGUSR1 to each (stop
  accepting: close its copy of the listening socket), and once none holds the socket any more
  (so the port refuses new connections before any worker closes an idle one; at most
  ``STOP_ACCEPTING_WAIT`` s), SIGTERM to each (drain connections within the grace, as a single
  edge does). The supervisor waits for all of them (SIGKILL after the grace and a margin) and
  exits 0. Workers inherit SIGUSR1 ignored, so one still starting is not killed by it.
* A worker that exits while the supervisor is not stopping is restarted, after a back-off that
  doubles (up to ``MAX_BACKOFF``) while workers keep dying young.
* Workers run in their own session, so a terminal's Ctrl-C reaches only the supervisor (which
  forwards it once), and a worker whose supervisor has gone stops by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType

__all__ = ["WORKER_FD_SETTING", "Supervisor", "bind_listener"]

_log = logging.getLogger("edge.workers")

WORKER_FD_SETTING = "EDGE_WORKER_FD"  # RAILGUARD_EDGE_WORKER_FD: set by the supervisor only
MIN_BACKOFF = 0.25
MAX_BACKOFF = 5.0
HEALTHY_AFTER = 5.0  # a worker that lived this long resets the back-off
KILL_MARGIN = 5.0  # seconds past the grace before a worker that has not stopped is killed
STOP_ACCEPTING_WAIT = 1.0  # seconds the workers get to close the listening socket


def bind_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening TCP socket the workers share (inheritable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Slot:
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = MIN_BACKOFF
    next_start: float = 0.0


Spawn = Callable[[Mapping[str, str], int], "subprocess.Popen[bytes]"]


def _spawn_worker(env: Mapping[str, str], fd: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "edge_service"],
        env=dict(env),
        pass_fds=(fd,),
        start_new_session=True,
    )


class Supervisor:
    """Run ``workers`` edge processes on ``sock`` until SIGTERM/SIGINT; see the module docstring."""

    def __init__(
        self,
        sock: socket.socket,
        workers: int,
        grace_seconds: float,
        environ: Mapping[str, str],
        spawn: Spawn = _spawn_worker,
    ) -> None:
        self.sock = sock
        self._inode = os.fstat(sock.fileno()).st_ino
        self.grace_seconds = grace_seconds
        self._env = {**environ, "RAILGUARD_" + WORKER_FD_SETTING: str(sock.fileno())}
        self._spawn = spawn
        self.slots = [_Slot() for _ in range(workers)]
        self.stopping = False
        self.restarts = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            return
        _log.info("stopping edge workers", extra={"signal": signal.Signals(signum).name})
        self.stopping = True
        self._signal_all(signal.SIGUSR1)  # step 1: stop accepting; run() does step 2
        self.sock.close()

    def _signal_all(self, sig: signal.Signals) -> None:
        for slot in self.slots:
            process = slot.process
            if process is not None and process.poll() is None:
                try:
                    process.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _holds_listener(self, pid: int) -> bool:
        """Whether process ``pid`` still has the listening socket open (Linux /proc)."""
        wanted = f"socket:[{self._inode}]"
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False  # gone, or no /proc: nothing to wait for
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return True
            except OSError:
                continue
        return False

    def _wait_until_no_worker_listens(self, deadline: float, poll: float) -> None:
        while time.monotonic() < deadline:
            alive = [s.process for s in self.slots if s.process and s.process.poll() is None]
            if not any(self._holds_listener(p.pid) for p in alive):
                return
            time.sleep(poll)

    def _start(self, slot: _Slot, now: float) -> None:
        fd = self.sock.fileno()
        if self.stopping or fd < 0:
            return
        slot.process = self._spawn(self._env, fd)
        slot.started = now

    def _tend(self, now: float) -> None:
        """Start what is missing, restart what died (with back-off)."""
        for index, slot in enumerate(self.slots):
            process = slot.process
            if process is not None and process.poll() is None:
                continue
            if process is not None:  # it died: log once and schedule the restart
                lived = now - slot.started
                slot.backoff = (
                    MIN_BACKOFF if lived >= HEALTHY_AFTER else min(MAX_BACKOFF, slot.backoff * 2)
                )
                slot.next_start = now + slot.backoff
                _log.warning(
                    "edge worker exited; restarting it",
                    extra={"worker": index, "code": process.returncode, "in_s": slot.backoff},
                )
                slot.process = None
                self.restarts += 1
            if now >= slot.next_start and not self.stopping:
                self._start(slot, now)

    def run(self, poll: float = 0.1) -> int:
        """Supervise until told to stop; 0 once every worker has exited."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        # inherited by the workers: SIGUSR1 does nothing to one that is not serving yet
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        try:
            _log.info("edge workers", extra={"workers": len(self.slots)})
            while not self.stopping:
                self._tend(time.monotonic())
                time.sleep(poll)
            self._wait_until_no_worker_listens(time.monotonic() + STOP_ACCEPTING_WAIT, poll / 10)
            self._signal_all(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_seconds + KILL_MARGIN
            for slot in self.slots:
                if slot.process is None:
                    continue
                try:
                    slot.process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _log.warning("edge worker did not stop in time; killing it")
                    slot.process.kill()
                    slot.process.wait()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def supervise(
    host: str, port: int, workers: int, grace_seconds: float, environ: Mapping[str, str]
) -> int:
    sock = bind_listener(host, port)
    return Supervisor(sock, workers, grace_seconds, environ).run()


def parent_gone(parent: int) -> bool:
    """True once the supervisor that started this worker has exited."""
    return os.getppid() != parent
