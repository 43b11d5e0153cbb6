"""A purged workspace's secret material in this service: destroyed in bulk, tombstones kept.

Every credential's ciphertext and mask and every webhook trigger's token ciphertext and lookup
hash in the workspace become NULL/empty; the rows stay (ids, names, provider, times) with
``purged_at`` set, exactly as the per-item purge job leaves them. Deliveries (times, sizes,
content types, source addresses) hold no secret and are kept with their trigger.
"""

from __future__ import annotations

import datetime as dt

from servicekit.lifecycle import purge_recorder
from servicekit.rows import rowcount
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from credentials_service.adapters.tables import AUDIT_OUTBOX, CredentialRow, WebhookTriggerRow


async def destroy_workspace_secrets(
    session: AsyncSession, workspace_id: str, now: dt.datetime
) -> dict[str, int]:
    """Purge everything of ``workspace_id`` not yet purged, in the caller's transaction."""
    credentials = await session.execute(
        update(CredentialRow)
        .where(CredentialRow.workspace_id == workspace_id, CredentialRow.purged_at.is_(None))
        .values(
            ciphertext=None,
            masked_value="",
            purged_at=now,
            deleted_at=func.coalesce(CredentialRow.deleted_at, now),
            purge_at=func.coalesce(CredentialRow.purge_at, now),
            updated_at=now,
            updated_by="system",
        )
        .execution_options(synchronize_session=False)
    )
    triggers = await session.execute(
        update(WebhookTriggerRow)
        .where(
            WebhookTriggerRow.workspace_id == workspace_id, WebhookTriggerRow.purged_at.is_(None)
        )
        .values(
            token_ciphertext=None,
            token_hash=None,
            purged_at=now,
            deleted_at=func.coalesce(WebhookTriggerRow.deleted_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    return {
        "stored_values": rowcount(credentials),
        "triggers": rowcount(triggers),
    }


record_workspace_purge = purge_recorder(AUDIT_OUTBOX, "credential.purgeWorkspace")
"""One ``credential.purgeWorkspace`` audit event in the purge's transaction (counts only)."""
