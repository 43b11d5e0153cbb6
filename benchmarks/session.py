"""What every benchmark receives: the time budget, the client process, and the shared suite."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadgen import Load, LoadClient
from benchmarks.stack import BenchStack, bench_stack

__all__ = ["STACK_SERVICES", "Budget", "Session"]

STACK_SERVICES = ("auth", "workspaces", "keys")
# Two edges: the revocation benchmark revokes through one and watches the other.
STACK_EDGES = 2


@dataclass(frozen=True, slots=True)
class Budget:
    """How long each measurement runs. Every run is bounded by time and by request count."""

    duration: float  # seconds measured per round
    warmup: float  # seconds run and discarded before each round
    rounds: int  # rounds per side, alternating Railguard and baseline; the best of each is kept
    concurrency: int  # concurrent requests for the RPC and HTTP figures

    @classmethod
    def full(cls) -> Budget:
        return cls(duration=4.0, warmup=0.75, rounds=3, concurrency=16)

    @classmethod
    def quick(cls) -> Budget:
        return cls(duration=1.5, warmup=0.3, rounds=1, concurrency=16)

    def load(self, concurrency: int | None = None) -> Load:
        return Load(concurrency or self.concurrency, self.duration, self.warmup)

    @property
    def cores(self) -> int:
        return os.cpu_count() or 1


class Session:
    """One ``make bench`` run: starts the suite on first use and stops everything at the end."""

    def __init__(
        self,
        budget: Budget,
        workdir: Path,
        database: str,
        scale: str = "default",
        soak_seconds: float = 600.0,
    ) -> None:
        self.budget, self.workdir, self.database = budget, workdir, database
        self.soak_seconds = soak_seconds  # bench_soak's mixed traffic; 10 minutes by default
        self.scale = scale  # "default" or "large" (the 1M-key case); see bench_keys
        self._exit = contextlib.ExitStack()
        self.client = self._exit.enter_context(LoadClient())
        self._stack: BenchStack | None = None

    @property
    def started(self) -> bool:
        return self._stack is not None

    def stack(self) -> BenchStack:
        if self._stack is None:
            self._stack = self._exit.enter_context(
                bench_stack(
                    self.workdir / "stack", STACK_SERVICES, self.database, edges=STACK_EDGES
                )
            )
        return self._stack

    def close(self) -> None:
        self._exit.close()
