"""The keys service's own settings, typed and read once (their meanings: ``servicekit.catalog``).

``KeysSettings.load`` is the one place the keys service reads a ``RAILGUARD_KEYS_*`` variable
for its composition root; ``__main__`` takes the typed object. (The pepper ring,
``RAILGUARD_KEYS_PEPPERS``, is a secret read by ``adapters.peppers``, never held here.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from servicekit.settings import Settings

from keys_service.adapters.key_cache import DEFAULT_ENTRIES

__all__ = ["KeysSettings"]


@dataclass(frozen=True, slots=True)
class KeysSettings:
    """Everything the keys service reads beyond the shared :class:`~servicekit.settings.Settings`."""

    retention: timedelta
    """``RAILGUARD_KEYS_RETENTION_DAYS`` (default 30, at least 1): how long a deleted key is restorable."""
    workspace_cache_seconds: float
    """``RAILGUARD_KEYS_WORKSPACE_CACHE_SECONDS``: how long a workspace's status is cached."""
    last_used_flush_seconds: float
    """``RAILGUARD_KEYS_LAST_USED_FLUSH_SECONDS``: how often last-used times are written."""
    verify_cache_entries: int
    """``RAILGUARD_KEYS_VERIFY_CACHE_ENTRIES`` (default 4 096; 0: off): stored keys VerifyApiKey
    keeps while the keys change feed is live (``adapters.key_cache``)."""

    @classmethod
    def load(cls, settings: Settings) -> KeysSettings:
        """Read and check every keys setting; a bad value stops start-up (``ValueError``)."""
        return cls(
            retention=timedelta(days=settings.get_int("KEYS_RETENTION_DAYS", 30, minimum=1)),
            workspace_cache_seconds=settings.get_float("KEYS_WORKSPACE_CACHE_SECONDS", 1.0),
            last_used_flush_seconds=settings.get_float("KEYS_LAST_USED_FLUSH_SECONDS", 5.0),
            verify_cache_entries=settings.get_int(
                "KEYS_VERIFY_CACHE_ENTRIES", DEFAULT_ENTRIES, minimum=0
            ),
        )
