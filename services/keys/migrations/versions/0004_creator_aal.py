"""Each key records its creator's assurance level (aal1/aal2) for workspaces that require MFA.

Keys that existed before this revision get ``aal1``: their creator's assurance is unknown, so in a
workspace with ``mfaRequired`` they are refused (fail closed) until an aal2 member rotates them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "keys_0004"
down_revision = "keys_0003"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("creator_aal", sa.String(8), nullable=False, server_default="aal1")
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("creator_aal")
