"""The deployment PINs (one hash per workspace deployment)."""

from __future__ import annotations

from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import delete

from auth_service.adapters.statements import (
    SqlRepository,
    changed,
    insert_ignoring_conflict,
    saving,
)
from auth_service.adapters.tables import DeploymentPinRow
from auth_service.domain import DeploymentPin

# a deployment's PIN is found by its two names; setting it again replaces the hash
_PIN_KEY = ("workspace_id", "deployment_id")
_PIN_CHANGES = ("pin_hash", "updated_at")


class DeploymentPinRepository(SqlRepository):
    async def get(self, workspace_id: str, deployment_id: str) -> DeploymentPin | None:
        row = await self.session.get(
            DeploymentPinRow, (workspace_id, deployment_id), populate_existing=True
        )
        return from_row(DeploymentPin, row) if row else None

    async def put(self, pin: DeploymentPin) -> None:
        """Insert or replace the PIN of a deployment."""
        inserted = insert_ignoring_conflict(self.session, DeploymentPinRow, columns(pin))
        if rowcount(await self.session.execute(inserted)) == 1:
            return
        await changed(self.session, saving(DeploymentPinRow, pin, _PIN_CHANGES, by=_PIN_KEY))

    async def remove(self, workspace_id: str, deployment_id: str) -> bool:
        stmt = delete(DeploymentPinRow).where(
            DeploymentPinRow.workspace_id == workspace_id,
            DeploymentPinRow.deployment_id == deployment_id,
        )
        return rowcount(await self.session.execute(stmt)) == 1
