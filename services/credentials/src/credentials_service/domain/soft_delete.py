"""What a soft-deletable record is: deleted (restorable or not), then purged to a tombstone.

Credentials and webhook triggers both live this way (DESIGN R16); the use cases' shared
lifecycle (``usecases/lifecycle.py``) relies only on what is declared here.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

__all__ = ["SoftDeletable"]


class SoftDeletable(ABC):
    """Base of a record with ``deleted_at`` (soft delete) and ``purged_at`` (tombstone);
    a subclass that leaves ``context``, ``sealed`` or ``purge`` out cannot be instantiated."""

    __slots__ = ()

    id: str
    workspace_id: str
    deleted_at: dt.datetime | None
    purged_at: dt.datetime | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def purged(self) -> bool:
        """The retention job destroyed the secret material; this is a tombstone."""
        return self.purged_at is not None

    @property
    @abstractmethod
    def context(self) -> str:
        """The key-derivation context that binds the record's ciphertext to it."""

    @property
    @abstractmethod
    def sealed(self) -> str | None:
        """The record's one ciphertext (None once purged)."""

    @abstractmethod
    def purge(self, now: dt.datetime) -> None:
        """Destroy the secret material, keeping the tombstone."""
