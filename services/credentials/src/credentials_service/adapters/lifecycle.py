"""A purged workspace's secret material in this service: destroyed in bulk, tombstones kept.

Every credential's ciphertext and mask and every webhook trigger's token ciphertext and lookup
hash in the workspace become NULL/empty; the rows stay (ids, names, provider, times) with
``purged_at`` set, exactly as the per-item purge job leaves them. Deliveries (times, sizes,
content types, source addresses) hold no secret and are kept with their trigger.
"""

from __future__ import annotations

import datetime as dt

from servicekit.lifecycle import purge_recorder, purge_workspace_rows
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from credentials_service.adapters.tables import AUDIT_OUTBOX, CredentialRow, WebhookTriggerRow


async def destroy_workspace_secrets(
    session: AsyncSession, workspace_id: str, now: dt.datetime
) -> dict[str, int]:
    """Purge everything of ``workspace_id`` not yet purged, in the caller's transaction."""
    stored_values = await purge_workspace_rows(
        session,
        CredentialRow,
        workspace_id,
        now,
        ciphertext=None,
        masked_value="",
        purge_at=func.coalesce(CredentialRow.purge_at, now),
        updated_at=now,
        updated_by="system",
    )
    triggers = await purge_workspace_rows(
        session, WebhookTriggerRow, workspace_id, now, token_ciphertext=None, token_hash=None
    )
    return {"stored_values": stored_values, "triggers": triggers}


record_workspace_purge = purge_recorder(AUDIT_OUTBOX, "credential.purgeWorkspace")
"""One ``credential.purgeWorkspace`` audit event in the purge's transaction (counts only)."""
