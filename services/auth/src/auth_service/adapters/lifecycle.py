"""A purged workspace's deployment PINs: deleted (their argon2id hashes are the secret material).

A PIN row holds nothing but the hash and two times, so nothing is kept as a tombstone: the
audit log keeps the record of each PIN's life and of this purge.
"""

from __future__ import annotations

import datetime as dt

from servicekit.lifecycle import purge_recorder
from servicekit.rows import rowcount
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.adapters.tables import AUDIT_OUTBOX, DeploymentPinRow


async def destroy_workspace_pins(
    session: AsyncSession, workspace_id: str, now: dt.datetime
) -> dict[str, int]:
    """Delete every PIN of ``workspace_id``, in the caller's transaction."""
    result = await session.execute(
        delete(DeploymentPinRow)
        .where(DeploymentPinRow.workspace_id == workspace_id)
        .execution_options(synchronize_session=False)
    )
    return {"deployments": rowcount(result)}


record_workspace_purge = purge_recorder(AUDIT_OUTBOX, "deploymentPin.purgeWorkspace")
"""One ``deploymentPin.purgeWorkspace`` audit event in the purge's transaction (counts only)."""
