"""A purged workspace's API keys: both digests destroyed in bulk, tombstones kept.

Every key of the workspace not yet purged loses ``secret_digest`` and ``previous_digest`` (and
the rotation grace) and gets ``purged_at``, exactly as the per-key purge job leaves a key; a key
that was not deleted is marked deleted at the same instant. Nothing can verify against the rows
afterwards: the lookup column is NULL.
"""

from __future__ import annotations

import datetime as dt

from servicekit.lifecycle import purge_recorder, purge_workspace_rows
from sqlalchemy.ext.asyncio import AsyncSession

from keys_service.adapters.tables import AUDIT_OUTBOX, ApiKeyRow


async def destroy_workspace_keys(
    session: AsyncSession, workspace_id: str, now: dt.datetime
) -> dict[str, int]:
    """Purge every key of ``workspace_id`` not yet purged, in the caller's transaction."""
    purged = await purge_workspace_rows(
        session,
        ApiKeyRow,
        workspace_id,
        now,
        secret_digest=None,
        previous_digest=None,
        previous_expires_at=None,
        updated_at=now,
    )
    return {"api_keys": purged}


record_workspace_purge = purge_recorder(AUDIT_OUTBOX, "apiKey.purgeWorkspace")
"""One ``apiKey.purgeWorkspace`` audit event in the purge's transaction (counts only)."""
