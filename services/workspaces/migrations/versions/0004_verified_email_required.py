"""Workspaces may require members with a verified email address (next to mfa_required)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from servicekit.migrations import add_column_revision

revision = "ws_0004"
down_revision = "ws_0003"


def verified_email_required() -> sa.Column[Any]:
    return sa.Column(
        "verified_email_required", sa.Boolean(), nullable=False, server_default=sa.false()
    )


upgrade, downgrade = add_column_revision("workspaces", verified_email_required)
