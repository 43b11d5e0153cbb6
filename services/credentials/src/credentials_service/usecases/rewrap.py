"""Key rotation: re-seal every stored ciphertext under the latest key version, then raise the
floor (``min_decryption_version``) once no row is left behind.

The plaintext never reaches this process (the key manager's rewrap).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from servicekit.errors import InvalidArgument, RailguardError, Unavailable
from servicekit.kms import parse_ciphertext

from credentials_service.domain import Credential, WebhookTrigger
from credentials_service.ports import CredentialsUnitOfWork, SealingKeyManager
from credentials_service.usecases.credentials import CREDENTIALS
from credentials_service.usecases.lifecycle import ResourceKind
from credentials_service.usecases.webhooks import TRIGGERS

__all__ = ["KeyRotation", "Progress", "RewrapReport"]

_audit = logging.getLogger("credentials_service.audit")
_log = logging.getLogger("credentials_service")


SealedKind = ResourceKind[Credential] | ResourceKind[WebhookTrigger]
"""A kind of record holding a ciphertext to rewrap."""


class Progress(Protocol):
    def __call__(self, kind: str, done: int, total: int) -> None: ...


@dataclass(slots=True)
class RewrapReport:
    """What a rewrap run did: the key version it rewrapped to and the rows it touched."""

    key_version: int
    rewrapped: int = 0
    skipped: int = 0
    failed: int = 0
    min_decryption_version: int = 0


class KeyRotation:
    def __init__(
        self,
        uow: Callable[[], CredentialsUnitOfWork],
        kms: SealingKeyManager,
        kinds: Sequence[SealedKind] = (CREDENTIALS, TRIGGERS),
    ) -> None:
        self._uow, self._kms, self._kinds = uow, kms, kinds

    async def rewrap(
        self, *, batch_size: int = 100, rotate: bool = True, progress: Progress | None = None
    ) -> RewrapReport:
        """Rotate the key, re-seal every stored ciphertext under the new version, raise the floor.

        Rows are taken in id order, ``batch_size`` at a time, one transaction per batch, so an
        interrupted run loses at most one batch; run again with ``rotate=False`` to resume. A row
        that will not rewrap is counted and skipped; min_decryption_version is raised only when
        none is left behind.
        """
        if not 1 <= batch_size <= 1000:
            raise InvalidArgument.field("batch_size", "must be 1 to 1000")
        latest = await self._kms.rotate() if rotate else (await self._kms.key_info()).latest_version
        report = RewrapReport(latest)
        for kind in self._kinds:
            await self._rewrap_kind(kind, latest, batch_size, report, progress)
        left = 0
        async with self._uow() as uow:
            for kind in self._kinds:
                left += await kind.repository(uow).count_stale(latest)
        info = await self._kms.key_info()
        if left == 0 and info.min_decryption_version < latest:
            info = await self._kms.set_min_decryption_version(latest)
        report.min_decryption_version = info.min_decryption_version
        _audit.info(
            "credentials.rewrapped",
            extra={
                "key_version": latest,
                "rewrapped": report.rewrapped,
                "skipped": report.skipped,
                "failed": report.failed,
                "min_decryption_version": report.min_decryption_version,
            },
        )
        return report

    async def _rewrap_kind(
        self,
        kind: SealedKind,
        latest: int,
        batch_size: int,
        report: RewrapReport,
        progress: Progress | None,
    ) -> None:
        async with self._uow() as uow:
            total = await kind.repository(uow).count_stale(latest)
        done, cursor = 0, ""
        if progress:
            progress(kind.table, 0, total)
        while True:
            async with self._uow() as uow:
                repo = kind.repository(uow)
                rows: list[tuple[str, str, str]] = [
                    (r.id, r.sealed, r.context)
                    for r in await repo.stale(latest, cursor, batch_size)
                    if r.sealed is not None
                ]
                if not rows:
                    break
                results = await self._rewrap_rows(rows)
                for (row_id, old, _), new in zip(rows, results, strict=True):
                    if new is None:
                        report.failed += 1
                    elif await repo.replace_ciphertext(
                        row_id, old, new, parse_ciphertext(new).version
                    ):
                        report.rewrapped += 1
                    else:
                        report.skipped += 1  # the value was replaced meanwhile
                await uow.commit()
            cursor = rows[-1][0]
            done += len(rows)
            if progress:
                progress(kind.table, min(done, total), total)

    async def _rewrap_rows(self, rows: list[tuple[str, str, str]]) -> list[str | None]:
        """Rewrap a batch; when the batch fails, retry item by item to isolate the bad rows."""
        try:
            return list(await self._kms.rewrap_batch([(c, ctx) for _, c, ctx in rows]))
        except Unavailable:
            raise
        except RailguardError as exc:
            _log.warning("rewrap batch failed; retrying row by row", extra={"reason": exc.reason})
        results: list[str | None] = []
        for row_id, ciphertext, context in rows:
            try:
                results.append(await self._kms.rewrap(ciphertext, context))
            except Unavailable:
                raise
            except RailguardError as exc:
                _log.error("row could not be rewrapped", extra={"id": row_id, "reason": exc.reason})
                results.append(None)
        return results
