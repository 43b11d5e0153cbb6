"""TOTP factors, recovery codes, MFA challenges, throttle counters, sealed secrets, deployment PINs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import id_column, references, timestamp

revision = "auth_0002"
down_revision = "auth_0001"


def upgrade() -> None:
    op.create_table(
        "totp_factors",
        id_column(),
        references("user_id", "users.id"),
        sa.Column("sealed_secret", sa.Text, nullable=False),
        timestamp("created_at"),
        timestamp("confirmed_at", nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("user_id", name="uq_totp_factors_user"),
    )
    op.create_table(
        "recovery_codes",
        id_column(),
        references("user_id", "users.id"),
        sa.Column("code_hash", sa.String(64), nullable=False),
        timestamp("created_at"),
        timestamp("used_at", nullable=True),
        sa.UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])
    op.create_table(
        "mfa_challenges",
        id_column(),
        references("user_id", "users.id"),
        sa.Column("token_hash", sa.String(64), nullable=False),
        timestamp("created_at"),
        timestamp("expires_at"),
        sa.Column("attempts", sa.Integer, nullable=False),
        timestamp("consumed_at", nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_mfa_challenges_hash"),
    )
    op.create_index("ix_mfa_challenges_expires_at", "mfa_challenges", ["expires_at"])
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        timestamp("hour_start"),
        sa.Column("hour_failures", sa.Integer, nullable=False),
        timestamp("blocked_until", nullable=True),
        timestamp("last_failure_at", nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "auth_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("sealed_value", sa.Text, nullable=False),
        timestamp("created_at"),
    )
    op.create_table(
        "deployment_pins",
        sa.Column("workspace_id", sa.String(64), primary_key=True),
        sa.Column("deployment_id", sa.String(64), primary_key=True),
        sa.Column("pin_hash", sa.String(255), nullable=False),
        timestamp("created_at"),
        timestamp("updated_at"),
    )


def downgrade() -> None:
    for table in (
        "deployment_pins",
        "auth_secrets",
        "throttle_counters",
        "mfa_challenges",
        "recovery_codes",
        "totp_factors",
    ):
        op.drop_table(table)
