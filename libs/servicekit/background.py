"""Background loops that stop between their steps, never inside one.

A service's background work (the outbox relays, the change-feed poller, the last-used flusher,
auth's maintenance) talks to the database. Cancelling such a task in the middle of a statement
throws its pooled connection away and leaves SQLAlchemy to tear it down from a task of its own,
after the loop that owned it may be gone: shutdown hangs or leaks a connection. A :class:`Loop`
avoids that: :meth:`Loop.stop` asks the body to end, wakes it if it is waiting, and lets the step
in flight finish. Only a step still running after ``grace`` seconds (a hung dependency) is
cancelled, and the log says so.

The body is a coroutine that repeats ``while await loop.pause(seconds): step``; :meth:`Loop.pause`
returns early when poked and returns False once a stop was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

__all__ = ["DEFAULT_GRACE", "Loop", "settle"]

_log = logging.getLogger("servicekit.background")
DEFAULT_GRACE: Final = 5.0
T = TypeVar("T")


async def settle(work: Awaitable[T], grace: float, what: str) -> T | None:
    """Await ``work`` for at most ``grace`` seconds; past that cancel it and return None.

    For the last step of a shutdown (a final flush or drain): it finishes unless it hangs.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=grace)
    except asyncio.CancelledError:
        task.cancel()  # the caller was cancelled: the work goes with it
        raise
    if not done:
        _log.warning("%s still running after %.1f s; cancelled", what, grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    return task.result()


class Loop:
    """One named background task, started with a body and stopped between its steps."""

    def __init__(self, name: str, *, grace: float = DEFAULT_GRACE) -> None:
        self.name, self.grace = name, grace
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[Any] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self, body: Callable[[], Awaitable[Any]]) -> None:
        """Run ``body()`` in the background unless it already runs."""
        if self.running:
            return
        self._stopping = False
        self._wake.clear()

        async def run() -> None:
            await body()

        self._task = asyncio.create_task(run(), name=self.name)

    def poke(self) -> None:
        """End the current :meth:`pause` now (new work to do)."""
        self._wake.set()

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until poked; False once :meth:`stop` was asked (the body ends)."""
        if self._stopping:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()
        return not self._stopping

    async def stop(self) -> None:
        """Ask the body to end and wait for it: the step in flight finishes, within ``grace``."""
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is None:
            return
        try:
            await settle(task, self.grace, self.name)
        except Exception:  # noqa: BLE001 - a body's failure is logged, not raised into a shutdown
            _log.exception("%s ended with an error", self.name)
