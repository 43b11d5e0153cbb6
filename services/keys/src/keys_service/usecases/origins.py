"""The allowed origins of every active key: what the edge answers a CORS preflight with."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from servicekit.clock import Clock

from keys_service.ports import OriginsUnitOfWork

__all__ = ["AllowedOrigins"]


class AllowedOrigins:
    """The union of the allowed origins of every active key, with a version (a digest of it)."""

    def __init__(self, uow: Callable[[], OriginsUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def current(self) -> tuple[str, tuple[str, ...]]:
        async with self._uow() as uow:
            lists = await uow.keys.active_origin_lists(self._clock.now())
        origins = tuple(sorted({origin for listed in lists for origin in listed}))
        version = hashlib.sha256("\n".join(origins).encode()).hexdigest()[:32]
        return version, origins
