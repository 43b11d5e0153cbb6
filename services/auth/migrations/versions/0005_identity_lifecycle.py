"""Identity lifecycle: the mail outbox, single-use account tokens, verified email addresses."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import (
    create_outbox_table,
    drop_outbox_table,
    id_column,
    references,
    timestamp,
)

revision = "auth_0005"
down_revision = "auth_0004"


def upgrade() -> None:
    create_outbox_table("auth_mail_outbox")
    op.create_table(
        "account_tokens",
        id_column(),
        sa.Column("purpose", sa.String(32), nullable=False),
        references("user_id", "users.id"),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        timestamp("created_at"),
        timestamp("expires_at"),
        timestamp("consumed_at", nullable=True),
    )
    op.create_index("ix_account_tokens_expires_at", "account_tokens", ["expires_at"])
    op.create_index("ix_account_tokens_user_purpose", "account_tokens", ["user_id", "purpose"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(timestamp("email_verified_at", nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified_at")
    op.drop_index("ix_account_tokens_user_purpose", table_name="account_tokens")
    op.drop_index("ix_account_tokens_expires_at", table_name="account_tokens")
    op.drop_table("account_tokens")
    drop_outbox_table("auth_mail_outbox")
