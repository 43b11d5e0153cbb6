"""Last-used tracking without a write per request.

Verify records ``{key_id: latest use}`` in memory (and skips keys whose stored last use is younger
than a minute, see ``usecases.LAST_USED_RESOLUTION``); a background task flushes the buffer every
few seconds with one forward-only ``UPDATE … WHERE last_used_at < :ts``, executed for every key
at once (one prepared statement, one executemany), in one transaction. The buffer is flushed once more on shutdown. A failed flush puts its entries back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from servicekit.background import Loop, settle

from keys_service.usecases import KeysUnitOfWork

__all__ = ["LastUsedBuffer"]

_log = logging.getLogger("keys_service.usage")
_MAX_PENDING: Final = 100_000


class LastUsedBuffer:
    def __init__(self, uow: Callable[[], KeysUnitOfWork], interval: float = 5.0) -> None:
        self._uow, self._interval = uow, interval
        self._pending: dict[str, datetime] = {}
        self._loop = Loop("last-used")

    def record(self, key_id: str, when: datetime) -> None:
        seen = self._pending.get(key_id)
        if seen is None and len(self._pending) >= _MAX_PENDING:
            return  # bounded memory; last-used is informational
        if seen is None or when > seen:
            self._pending[key_id] = when

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write what was recorded; returns the number of keys written."""
        batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            async with self._uow() as uow:
                # one statement, in id order so that two replicas' flushes lock rows alike
                await uow.keys.touch_many(sorted(batch.items()))
                await uow.commit()
        except Exception:
            for key_id, when in batch.items():
                self.record(key_id, when)
            raise
        return len(batch)

    async def _run(self) -> None:
        while await self._loop.pause(self._interval):
            try:
                await self.flush()
            except Exception:
                _log.error("last-used flush failed", exc_info=True)

    def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self) -> None:
        """Stop between flushes and flush what is left (Wiring.on_stop)."""
        await self._loop.stop()
        try:
            await settle(self.flush(), self._loop.grace, "final last-used flush")
        except Exception:
            _log.error("final last-used flush failed", exc_info=True)
