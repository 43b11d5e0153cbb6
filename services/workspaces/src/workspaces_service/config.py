"""The workspaces service's own settings, typed and read once (their meanings: ``servicekit.catalog``).

``WorkspacesSettings.load`` is the one place the workspaces service's composition root reads a
variable beyond the shared :class:`~servicekit.settings.Settings`; ``__main__`` takes the typed
object.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.composition import relay_interval
from servicekit.settings import Settings

__all__ = ["WorkspacesSettings"]


@dataclass(frozen=True, slots=True)
class WorkspacesSettings:
    """Everything the workspaces service reads beyond the shared settings."""

    relay_interval: float
    """``RAILGUARD_AUDIT_RELAY_INTERVAL``: seconds between relay passes (audit and lifecycle)."""
    lifecycle_relay_max_backoff: float
    """``RAILGUARD_LIFECYCLE_RELAY_MAX_BACKOFF``: the longest wait between tries to a receiver."""
    public_url: str
    """``RAILGUARD_PUBLIC_URL``: the web address invitation links point at."""

    @classmethod
    def load(cls, settings: Settings) -> WorkspacesSettings:
        """Read every workspaces setting; a bad value stops start-up (``ValueError``)."""
        return cls(
            relay_interval=relay_interval(settings),
            lifecycle_relay_max_backoff=settings.get_float("LIFECYCLE_RELAY_MAX_BACKOFF", 5.0),
            public_url=settings.get("PUBLIC_URL", "https://127.0.0.1:8443"),
        )
