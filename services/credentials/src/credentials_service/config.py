"""The credentials service's own settings, typed and read once (meanings: ``servicekit.catalog``).

``CredentialsSettings.load`` is the one place credentials reads a ``RAILGUARD_CREDENTIALS_*``
variable; the composition root and its commands take the typed object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servicekit.settings import Settings

__all__ = ["CredentialsSettings"]


@dataclass(frozen=True, slots=True)
class CredentialsSettings:
    """Everything credentials reads beyond the shared :class:`~servicekit.settings.Settings`."""

    retention_days: int
    """Days a deleted credential or trigger stays restorable before its secret is destroyed."""
    webhook_pepper: str = field(repr=False)
    """The webhook-token keyed-hash secret (base64); "" for the embedded 0600 file."""

    @classmethod
    def load(cls, settings: Settings) -> CredentialsSettings:
        """Read and check every credentials setting; a bad value stops start-up (``ValueError``)."""
        return cls(
            retention_days=settings.get_int("CREDENTIALS_RETENTION_DAYS", 30, minimum=1),
            webhook_pepper=settings.get("CREDENTIALS_WEBHOOK_PEPPER"),
        )
