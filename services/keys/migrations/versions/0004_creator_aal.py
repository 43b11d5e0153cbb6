"""Each key records its creator's assurance level (aal1/aal2) for workspaces that require MFA.

Keys that existed before this revision get ``aal1``: their creator's assurance is unknown, so in a
workspace with ``mfaRequired`` they are refused (fail closed) until an aal2 member rotates them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from servicekit.migrations import add_column_revision

revision = "keys_0004"
down_revision = "keys_0003"


def creator_aal() -> sa.Column[Any]:
    return sa.Column("creator_aal", sa.String(8), nullable=False, server_default="aal1")


upgrade, downgrade = add_column_revision("api_keys", creator_aal)
