"""The purge job: destroys the secret material of items whose retention window has ended.

A credential is due at its ``purge_at`` (set at delete time, shown to users as ``purge_time``);
a trigger ``retention_days`` after its delete. The ciphertext (and for a credential the mask, for
a trigger the lookup hash) become NULL/empty; the row stays as a tombstone. Each item is purged
in its own transaction, re-checked first, so a concurrent restore either wins or is refused.
Needs no key manager: nothing is decrypted.
"""

from __future__ import annotations

import datetime as dt

from servicekit.usecase import Collaborators

from credentials_service.ports import CredentialsUnitOfWork
from credentials_service.usecases.credentials import CREDENTIALS
from credentials_service.usecases.lifecycle import PurgeScan, purge_expired
from credentials_service.usecases.webhooks import TRIGGERS

__all__ = ["CredentialsRetention"]


class CredentialsRetention:
    def __init__(
        self,
        deps: Collaborators[CredentialsUnitOfWork],
        retention_days: int = 30,
        *,
        batch: int = 100,
    ) -> None:
        if retention_days < 1:
            raise ValueError("the retention window is at least one day")
        self._uow, self._clock, self._after_commit = deps.uow, deps.clock, deps.after_commit
        self._retention = dt.timedelta(days=retention_days)
        self._batch = batch

    async def purge_expired(self) -> tuple[list[str], list[str]]:
        """Purge everything due now; the credential ids and trigger ids purged."""
        scan = PurgeScan(self._clock.now(), self._retention, limit=self._batch)
        credentials = await purge_expired(CREDENTIALS, self._uow, scan)
        triggers = await purge_expired(TRIGGERS, self._uow, scan)
        if credentials or triggers:
            self._after_commit()
        return credentials, triggers
