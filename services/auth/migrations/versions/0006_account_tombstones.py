"""Erased accounts keep a tombstone row: users.purged_at."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from servicekit.db import UtcDateTime
from servicekit.migrations import add_column_revision

revision = "auth_0006"
down_revision = "auth_0005"


def purged_at() -> sa.Column[Any]:
    return sa.Column("purged_at", UtcDateTime(), nullable=True)


upgrade, downgrade = add_column_revision("users", purged_at)
