"""What a soft-deletable record is: deleted (restorable or not), then purged to a tombstone.

Credentials and webhook triggers both live this way (DESIGN R16); the use cases' shared
lifecycle (``usecases/lifecycle.py``) relies only on what is declared here.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from typing import ClassVar

__all__ = ["SoftDeletable"]


class SoftDeletable(ABC):
    """Base of a record with ``deleted_at`` (soft delete) and ``purged_at`` (tombstone);
    a subclass that leaves ``sealed`` or ``purge`` out cannot be instantiated."""

    __slots__ = ()

    context_noun: ClassVar[str]
    """The kind's word in the key-derivation context of its records: ``credential``."""
    id: str
    workspace_id: str
    deleted_at: dt.datetime | None
    purged_at: dt.datetime | None

    @classmethod
    def sealing_context(cls, workspace_id: str, item_id: str) -> str:
        """The key-derivation context that binds a ciphertext to the record ``item_id`` of
        ``workspace_id``; known before the record is stored, so its value can be sealed first."""
        return f"workspace/{workspace_id}/{cls.context_noun}/{item_id}"

    @property
    def context(self) -> str:
        """The key-derivation context that binds the record's ciphertext to it."""
        return self.sealing_context(self.workspace_id, self.id)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def purged(self) -> bool:
        """The retention job destroyed the secret material; this is a tombstone."""
        return self.purged_at is not None

    @property
    @abstractmethod
    def sealed(self) -> str | None:
        """The record's one ciphertext (None once purged)."""

    @abstractmethod
    def purge(self, now: dt.datetime) -> None:
        """Destroy the secret material, keeping the tombstone."""
