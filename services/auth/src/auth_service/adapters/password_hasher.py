"""argon2id password hashing off the event loop, with bounded concurrency and a dummy hash.

Parameters come from settings but never go below the floor of DESIGN §4 (m=19456 KiB, t=2,
p=1). Each hash runs in a worker thread; a semaphore sized to the CPU count keeps a burst of
logins from queueing unbounded work or starving the event loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True)
class Argon2Params:
    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1

    def at_least(self, floor: Argon2Params) -> Argon2Params:
        """Tune only upward: a setting below the floor is raised to it."""
        return Argon2Params(
            max(self.memory_kib, floor.memory_kib),
            max(self.time_cost, floor.time_cost),
            max(self.parallelism, floor.parallelism),
        )


FLOOR = Argon2Params()


class Argon2Hasher:
    """A ``PasswordHasher``; build it with :meth:`create` (computes the dummy hash off-loop)."""

    def __init__(self, params: Argon2Params, dummy_hash: str, concurrency: int) -> None:
        self.params = params.at_least(FLOOR)
        self._hasher = argon2.PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_kib,
            parallelism=self.params.parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._dummy = dummy_hash
        self._slots = asyncio.Semaphore(max(1, concurrency))

    @classmethod
    async def create(
        cls, params: Argon2Params = FLOOR, concurrency: int | None = None
    ) -> Argon2Hasher:
        hasher = cls(params, "", concurrency or os.cpu_count() or 1)
        # Same parameters as real hashes, so verifying it costs what a real verify costs.
        hasher._dummy = await hasher.hash(secrets.token_urlsafe(24))
        return hasher

    def __repr__(self) -> str:
        return f"Argon2Hasher({self.params!r})"

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, hashed, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time a real verify would, for a user that does not exist or cannot log in."""
        await self.verify(self._dummy, password)

    def needs_rehash(self, hashed: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
